"""The one place parameters cross between ``scratch`` and ``torchref``.

Both sides key parameters the course's way (``W1, b1, ...``, W in (in, out));
``torchref.layers.Affine`` stores the transpose as ``nn.Linear`` does and is the
only code that transposes.  Values are copied exactly (no dtype change unless
asked): a round trip scratch -> torch -> scratch gives bit-identical arrays.
Batch-norm ``gamma_i``/``beta_i`` travel with the parameters, the running
statistics and the layer settings with the model.
"""

from __future__ import annotations

import numpy as np
import torch

import scratch.layers
import scratch.models
import torchref.layers
import torchref.models


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor on any device."""
    return t.detach().cpu().numpy().copy()


def params_to_numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors -> arrays, same keys and layout."""
    return {k: to_numpy(v) for k, v in params.items()}


def load_params(model: torchref.models.MLP, params: dict[str, np.ndarray]) -> None:
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


def mlp_options(model: scratch.models.MLP | torchref.models.MLP) -> dict:
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


def mlp_from_scratch(model: scratch.models.MLP, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> torchref.models.MLP:
    """A ``torchref.models.MLP`` with the scratch model's options, weights and running statistics.

    The dtype is kept unless given.  Dropout masks are not copied (they are
    drawn per forward pass; set ``fixed_mask`` on both sides to share one).
    """
    if dtype is None:
        dtype = torch.from_numpy(model.params["W1"][:0]).dtype
    tmodel = torchref.models.MLP(model.sizes, dtype=dtype, device=device, **mlp_options(model))
    load_params(tmodel, model.params)
    bn_state_to_torch(model, tmodel)
    return tmodel


def copy_bn_settings(src: object, dst: object) -> None:
    """Momentum, eps and the running-variance convention of a batch-norm layer."""
    for name in ("momentum", "eps", "unbiased_running_var"):
        setattr(dst, name, getattr(src, name))


def mlp_to_scratch(model: torchref.models.MLP) -> scratch.models.MLP:
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


def convnet_from_scratch(model: scratch.models.SimpleConvNet,
                         device: torch.device | str | None = None,
                         dtype: torch.dtype | None = None) -> torchref.models.SimpleConvNet:
    """A ``torchref.models.SimpleConvNet`` with the scratch model's options, weights and
    running statistics (dtype kept unless given; dropout masks are not copied)."""
    if dtype is None:
        dtype = torch.from_numpy(model.params["W1"][:0]).dtype
    tmodel = torchref.models.SimpleConvNet(model.input_dim, model.conv_param, model.hidden_size,
                                           model.output_size, dtype=dtype, device=device,
                                           **regularisation_options(model))
    copy_params(tmodel, model.params)
    bn_state_to_torch(model, tmodel)
    return tmodel


def convnet_to_scratch(model: torchref.models.SimpleConvNet) -> scratch.models.SimpleConvNet:
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


def seq_classifier_from_scratch(model: object, device: torch.device | str | None = None,
                                dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A ``torchref.models_seq.LSTMClassifier`` with the scratch model's cell and weights."""
    import torchref.models_seq
    if dtype is None:
        dtype = torch.from_numpy(model.params["Wx"][:0]).dtype
    tmodel = torchref.models_seq.LSTMClassifier(model.input_size, model.hidden_size,
                                                model.output_size, cell=model.cell, dtype=dtype,
                                                device=device)
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
