"""The one place parameters cross between ``scratch`` and ``torchref``.

Both sides key parameters the course's way (``W1, b1, ...``, W in (in, out));
``torchref.layers.Affine`` stores the transpose as ``nn.Linear`` does and is the
only code that transposes.  Values are copied exactly (no dtype change unless
asked): a round trip scratch -> torch -> scratch gives bit-identical arrays.
Batch-norm ``gamma_i``/``beta_i`` travel with the parameters, the running
statistics and the layer settings with the model.

Dependencies point one way: ``torchref.models`` and ``torchref.convnet`` import
this module (their ``from_scratch`` builds the torch model and calls
``load_mlp`` / ``load_convnet``); this module imports only ``scratch`` and
``torchref.layers``.
"""

from __future__ import annotations

import numpy as np
import torch

import scratch.convnets
import scratch.layers
import scratch.models
import torchref.layers


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor on any device."""
    return t.detach().cpu().numpy().copy()


def params_to_numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors -> arrays, same keys and layout."""
    return {k: to_numpy(v) for k, v in params.items()}


def load_params(model: torch.nn.Module, params: dict[str, np.ndarray]) -> None:
    """Copy course-layout arrays (W, b, and gamma, beta if any) into a torch model."""
    for i, layer in enumerate(model.affines, start=1):
        W, b = params[f"W{i}"], params[f"b{i}"]
        if tuple(W.shape) != tuple(layer.W.shape) or tuple(b.shape) != tuple(layer.b.shape):
            raise ValueError(f"params['W{i}']/['b{i}']: expected shapes {tuple(layer.W.shape)}"
                             f"/{tuple(layer.b.shape)}, got {W.shape}/{b.shape}")
        layer.load_course(torch.as_tensor(W).to(layer.weight),
                          torch.as_tensor(b).to(layer.bias))
    for i, layer in enumerate(model.layers_of(torchref.layers.BatchNormalization), start=1):
        for name in ("gamma", "beta"):
            value, target = params[f"{name}{i}"], getattr(layer, name)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"params['{name}{i}']: expected shape {tuple(target.shape)}, "
                                 f"got {value.shape}")
            with torch.no_grad():
                target.copy_(torch.as_tensor(value))


def regularisation_options(model: object) -> dict:
    """The options of chapter 6 that every model has: weight decay, dropout, batch norm."""
    return {"weight_decay_lambda": model.weight_decay_lambda,
            "use_dropout": model.use_dropout, "dropout_ratio": model.dropout_ratio,
            "use_batchnorm": model.use_batchnorm}


def mlp_options(model: object) -> dict:
    """The constructor options both MLPs share (sizes and weights excluded)."""
    return {"activation": model.activation, **regularisation_options(model)}


def bn_state_to_torch(model: object, tmodel: torch.nn.Module) -> None:
    """Copy the batch-norm layers' settings and running statistics, scratch -> torch."""
    for ours, theirs in zip(model.layers_of(scratch.layers.BatchNormalization),
                            tmodel.layers_of(torchref.layers.BatchNormalization), strict=True):
        copy_bn_settings(ours, theirs)
        with torch.no_grad():
            theirs.running_mean.copy_(torch.as_tensor(ours.running_mean))
            theirs.running_var.copy_(torch.as_tensor(ours.running_var))


def bn_state_to_scratch(tmodel: torch.nn.Module, model: object) -> None:
    """Copy the batch-norm layers' settings and running statistics, torch -> scratch."""
    for theirs, ours in zip(tmodel.layers_of(torchref.layers.BatchNormalization),
                            model.layers_of(scratch.layers.BatchNormalization), strict=True):
        copy_bn_settings(theirs, ours)
        ours.running_mean = to_numpy(theirs.running_mean)
        ours.running_var = to_numpy(theirs.running_var)


def load_mlp(tmodel: torch.nn.Module, model: scratch.models.MLP) -> torch.nn.Module:
    """Copy the scratch MLP's weights and running statistics into ``tmodel`` (built with the
    same sizes and ``mlp_options``: ``torchref.models.MLP.from_scratch`` does both).

    Dropout masks are not copied (they are drawn per forward pass; set
    ``fixed_mask`` on both sides to share one).
    """
    load_params(tmodel, model.params)
    bn_state_to_torch(model, tmodel)
    return tmodel


def scratch_dtype(model: object) -> torch.dtype:
    """The torch dtype of a scratch model's weights."""
    return torch.from_numpy(model.params["W1"][:0]).dtype


def copy_bn_settings(src: object, dst: object) -> None:
    """Momentum, eps and the running-variance convention of a batch-norm layer."""
    for name in ("momentum", "eps", "unbiased_running_var"):
        setattr(dst, name, getattr(src, name))


def mlp_to_scratch(model: torch.nn.Module) -> scratch.models.MLP:
    """A ``scratch.models.MLP`` with the torch model's options, weights, dtype and statistics."""
    params = params_to_numpy(model.params)
    smodel = scratch.models.MLP(model.sizes, dtype=params["W1"].dtype, **mlp_options(model))
    for key, value in params.items():
        smodel.params[key][...] = value
    bn_state_to_scratch(model, smodel)
    return smodel


def copy_params(model: torch.nn.Module, params: dict[str, np.ndarray]) -> None:
    """Copy course-layout arrays into the views ``model.params`` returns, with shape checks."""
    views = model.params
    for key, view in views.items():
        if key not in params or tuple(np.shape(params[key])) != tuple(view.shape):
            got = np.shape(params[key]) if key in params else "nothing"
            raise ValueError(f"params[{key!r}]: expected shape {tuple(view.shape)}, got {got}")
        with torch.no_grad():
            view.copy_(torch.as_tensor(params[key]).to(view))


def load_convnet(tmodel: torch.nn.Module,
                 model: scratch.models.SimpleConvNet) -> torch.nn.Module:
    """Copy the scratch SimpleConvNet's weights and running statistics into ``tmodel`` (built
    with the same options: ``torchref.convnet.SimpleConvNet.from_scratch`` does both)."""
    copy_params(tmodel, model.params)
    bn_state_to_torch(model, tmodel)
    return tmodel


def convnet_to_scratch(model: torch.nn.Module) -> scratch.models.SimpleConvNet:
    """A ``scratch.models.SimpleConvNet`` with the torch model's options, weights, dtype and
    running statistics."""
    params = params_to_numpy(model.params)
    smodel = scratch.models.SimpleConvNet(model.input_dim, model.conv_param, model.hidden_size,
                                          model.output_size, dtype=params["W1"].dtype,
                                          **regularisation_options(model))
    for key, value in params.items():
        smodel.params[key][...] = value
    bn_state_to_scratch(model, smodel)
    return smodel


# ---- recurrent layers and the sequence classifier (scratch.rnn <-> torchref.rnn / nn.*) -------
# torch has two biases where the course's RNN and LSTM have one: b = b_ih + b_hh one way,
# b_ih = b and b_hh = 0 the other (torchref.rnn freezes that zero).  The weights are
# transposes only: the gate blocks are in torch's order on both sides.

_NATIVE_KIND = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}


def _native_kind(module: torch.nn.RNNBase) -> str:
    kinds = [k for k, cls in _NATIVE_KIND.items() if isinstance(module, cls)]
    if not kinds:
        raise ValueError(f"module: expected an nn.RNN, nn.LSTM or nn.GRU, got "
                         f"{type(module).__name__}")
    kind = kinds[0]
    if module.num_layers != 1 or module.bidirectional or not module.bias \
            or getattr(module, "proj_size", 0) or getattr(module, "nonlinearity", "tanh") != "tanh":
        raise ValueError("module: expected one layer, one direction, with biases, no projection "
                         "and (for nn.RNN) nonlinearity='tanh', as the scratch layers are")
    return kind


def recurrent_params_from_native(module: torch.nn.RNNBase) -> dict[str, np.ndarray]:
    """Course-layout arrays of a one-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU``:
    ``Wx = weight_ih_l0^T``, ``Wh = weight_hh_l0^T``, ``b = bias_ih_l0 + bias_hh_l0``
    (GRU: ``bx = bias_ih_l0``, ``bh = bias_hh_l0``)."""
    kind = _native_kind(module)
    out = {"Wx": to_numpy(module.weight_ih_l0.T), "Wh": to_numpy(module.weight_hh_l0.T)}
    if kind == "GRU":
        out["bx"], out["bh"] = to_numpy(module.bias_ih_l0), to_numpy(module.bias_hh_l0)
    else:
        out["b"] = to_numpy(module.bias_ih_l0 + module.bias_hh_l0)
    return out


def recurrent_layer_from_native(module: torch.nn.RNNBase, stateful: bool = False) -> object:
    """The scratch layer (``scratch.rnn.TimeRNN/TimeLSTM/TimeGRU``) of a native torch module."""
    import scratch.rnn
    cls = getattr(scratch.rnn, f"Time{_native_kind(module)}")
    return cls(*recurrent_params_from_native(module).values(), stateful=stateful)


def recurrent_to_native(layer: object, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> torch.nn.RNNBase:
    """A plain ``nn.RNN(nonlinearity='tanh')``/``nn.LSTM``/``nn.GRU(batch_first=True)`` with a
    scratch layer's weights (``bias_ih_l0 = b``, ``bias_hh_l0 = 0``; GRU both biases)."""
    kind = layer.kind
    dtype = dtype or torch.from_numpy(layer.Wx[:0]).dtype
    module = _NATIVE_KIND[kind](layer.D, layer.H, batch_first=True, dtype=dtype, device=device)
    biases = (layer.bx, layer.bh) if kind == "GRU" else (layer.b, np.zeros_like(layer.b))
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               (layer.Wx.T, layer.Wh.T, *biases), strict=True):
            getattr(module, name).copy_(torch.as_tensor(np.ascontiguousarray(value)))
    return module


def recurrent_to_torch(layer: object, device: torch.device | str | None = None,
                       dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The ``torchref.rnn`` mirror of a scratch recurrent layer, same weights and ``stateful``."""
    import torchref.rnn
    kind = layer.kind
    arrays = [layer.Wx, layer.Wh, *((layer.bx, layer.bh) if kind == "GRU" else (layer.b,))]
    tensors = [torch.as_tensor(a).to(device=device, dtype=dtype) for a in arrays]
    return getattr(torchref.rnn, f"Time{kind}")(*tensors, stateful=layer.stateful)


def recurrent_to_scratch(module: torch.nn.Module) -> object:
    """The scratch layer of a ``torchref.rnn`` mirror (its exact weights and dtype)."""
    import scratch.rnn
    kind = module.kind
    arrays = [module.Wx, module.Wh, *((module.bx, module.bh) if kind == "GRU" else (module.b,))]
    return getattr(scratch.rnn, f"Time{kind}")(*(to_numpy(a) for a in arrays),
                                                stateful=module.stateful)


def load_seq_classifier(tmodel: torch.nn.Module, model: object) -> torch.nn.Module:
    """Copy a scratch ``LSTMClassifier``'s weights into ``tmodel`` (built with the same sizes
    and cell: ``torchref.models_seq.LSTMClassifier.from_scratch`` does both)."""
    copy_params(tmodel, model.params)
    return tmodel


def load_specnet(tmodel: torch.nn.Module, model: object) -> torch.nn.Module:
    """Copy a scratch ``CNN`` / ``DeepConvNet``'s weights into ``tmodel`` (the ``torchref``
    twin built with the same options: ``torchref.models.CNN.from_scratch`` does both;
    dropout masks are not copied)."""
    copy_params(tmodel, model.params)
    return tmodel


def seq_classifier_to_scratch(model: torch.nn.Module) -> object:
    """A ``scratch.models_seq.LSTMClassifier`` with the torch model's cell, weights and dtype."""
    import scratch.models_seq
    params = params_to_numpy(model.params)
    smodel = scratch.models_seq.LSTMClassifier(model.input_size, model.hidden_size,
                                               model.output_size, cell=model.cell,
                                               dtype=params["Wx"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel


def specnet_to_scratch(model: torch.nn.Module) -> scratch.convnets.SpecNet:
    """The ``scratch.models`` twin of a torch ``CNN`` / ``DeepConvNet``: options, weights, dtype."""
    params = params_to_numpy(model.params)
    cls = getattr(scratch.convnets, type(model).__name__)
    smodel = cls(**model.options(), dtype=params["W1"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel


# ---- attention and the Transformer (torchref.attention, torchref.attention) ----------------
# Course layout on both sides (W (in, out)); the torchref modules pack and transpose for torch.
# The native modules are filled here: nn.MultiheadAttention's in_proj_weight (3E, E) stacks
# Wq^T, Wk^T, Wv^T; nn.TransformerEncoderLayer names its parts self_attn, linear1, linear2,
# norm1, norm2; the reference text's literal block attention, feed_forward.0/2, norm1, norm2.

def tensors_from_numpy(params: dict[str, np.ndarray], device: torch.device | str | None = None,
                       dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Arrays -> tensors, same keys and layout (exact copies unless ``dtype`` is given)."""
    return {k: torch.from_numpy(np.array(v, copy=True)).to(device=device, dtype=dtype)
            for k, v in params.items()}


def _fill_linear(layer: torch.nn.Linear, W: torch.Tensor, b: torch.Tensor) -> None:
    if tuple(layer.weight.shape) != tuple(W.T.shape):
        raise ValueError(f"W: expected shape {tuple(layer.weight.T.shape)}, got {tuple(W.shape)}")
    with torch.no_grad():
        layer.weight.copy_(W.T)
        layer.bias.copy_(b)


def fill_native_attention(mha: torch.nn.MultiheadAttention, p: dict[str, torch.Tensor]) -> None:
    """Copy Wq ... bo (course layout) into an ``nn.MultiheadAttention`` (packed in_proj)."""
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([p["Wq"].T, p["Wk"].T, p["Wv"].T]))
        mha.in_proj_bias.copy_(torch.cat([p["bq"], p["bk"], p["bv"]]))
    _fill_linear(mha.out_proj, p["Wo"], p["bo"])


def _fill_norm(norm: torch.nn.LayerNorm, gamma: torch.Tensor, beta: torch.Tensor) -> None:
    with torch.no_grad():
        norm.weight.copy_(gamma)
        norm.bias.copy_(beta)


def native_attention_parameters(p: dict[str, torch.Tensor], prefix: str
                                ) -> dict[str, torch.Tensor]:
    """``nn.MultiheadAttention``'s parameters as differentiable functions of Wq ... bo
    (for ``torch.func.functional_call``): in_proj packs [Wq^T; Wk^T; Wv^T]."""
    return {f"{prefix}in_proj_weight": torch.cat([p["Wq"].T, p["Wk"].T, p["Wv"].T]),
            f"{prefix}in_proj_bias": torch.cat([p["bq"], p["bk"], p["bv"]]),
            f"{prefix}out_proj.weight": p["Wo"].T, f"{prefix}out_proj.bias": p["bo"]}


def encoder_layer_parameters(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``nn.TransformerEncoderLayer``'s parameter names -> the course's tensors (W transposed)."""
    return {**native_attention_parameters(p, "self_attn."),
            "linear1.weight": p["W1"].T, "linear1.bias": p["b1"],
            "linear2.weight": p["W2"].T, "linear2.bias": p["b2"],
            "norm1.weight": p["gamma1"], "norm1.bias": p["beta1"],
            "norm2.weight": p["gamma2"], "norm2.bias": p["beta2"]}


def reference_block_parameters(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The literal block's parameter names -> the course's tensors (W transposed)."""
    return {**native_attention_parameters(p, "attention."),
            "feed_forward.0.weight": p["W1"].T, "feed_forward.0.bias": p["b1"],
            "feed_forward.2.weight": p["W2"].T, "feed_forward.2.bias": p["b2"],
            "norm1.weight": p["gamma1"], "norm1.bias": p["beta1"],
            "norm2.weight": p["gamma2"], "norm2.bias": p["beta2"]}


def encoder_layer_from_params(params: dict[str, torch.Tensor], num_heads: int,
                              eps: float = 1e-5) -> torch.nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer(norm_first=False, activation="relu", batch_first=True,
    dropout=0)`` holding a block's course-layout parameters (tensors)."""
    e, f = params["W1"].shape
    layer = torch.nn.TransformerEncoderLayer(
        e, num_heads, dim_feedforward=f, dropout=0.0, activation="relu", layer_norm_eps=eps,
        batch_first=True, norm_first=False, device=params["W1"].device,
        dtype=params["W1"].dtype)
    fill_native_attention(layer.self_attn, params)
    _fill_linear(layer.linear1, params["W1"], params["b1"])
    _fill_linear(layer.linear2, params["W2"], params["b2"])
    _fill_norm(layer.norm1, params["gamma1"], params["beta1"])
    _fill_norm(layer.norm2, params["gamma2"], params["beta2"])
    return layer


def reference_block_from_params(params: dict[str, torch.Tensor], num_heads: int,
                                dropout: float = 0.0) -> torch.nn.Module:
    """The reference text's literal block (``torchref.attention.ReferenceTransformerBlock``)
    holding a block's course-layout parameters."""
    from torchref.attention import ReferenceTransformerBlock
    e, f = params["W1"].shape
    if f % e:
        raise ValueError(f"W1: the literal block's hidden width is forward_expansion * E; "
                         f"got {f} for E = {e}")
    block = ReferenceTransformerBlock(e, num_heads, dropout, f // e)
    block.to(device=params["W1"].device, dtype=params["W1"].dtype)
    fill_native_attention(block.attention, params)
    _fill_linear(block.feed_forward[0], params["W1"], params["b1"])
    _fill_linear(block.feed_forward[2], params["W2"], params["b2"])
    _fill_norm(block.norm1, params["gamma1"], params["beta1"])
    _fill_norm(block.norm2, params["gamma2"], params["beta2"])
    return block


def load_transformer_classifier(tmodel: torch.nn.Module, model: object) -> torch.nn.Module:
    """Copy a scratch ``TransformerClassifier``'s weights into ``tmodel`` (built with the same
    options: ``torchref.models_attention.TransformerClassifier.from_scratch`` does both)."""
    copy_params(tmodel, model.params)
    return tmodel


def transformer_classifier_to_scratch(model: torch.nn.Module) -> object:
    """The ``scratch.models_attention.TransformerClassifier`` with the torch one's options,
    exact weights and dtype."""
    import scratch.models_attention
    params = params_to_numpy(model.params)
    smodel = scratch.models_attention.TransformerClassifier(**model.options(),
                                                            dtype=params["W_in"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel
