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


# ---- attention and the Transformer (torchref.attention, torchref.transformer) ----------------
# Course layout on both sides (W (in, out)); the torchref modules pack and transpose for torch.
# The native modules are filled here: nn.MultiheadAttention's in_proj_weight (3E, E) stacks
# Wq^T, Wk^T, Wv^T; nn.TransformerEncoderLayer names its parts self_attn, linear1, linear2,
# norm1, norm2.

import scratch.models_attention  # noqa: E402
import torchref.models_attention  # noqa: E402
from torchref.transformer import ReferenceTransformerBlock  # noqa: E402


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
                                dropout: float = 0.0) -> ReferenceTransformerBlock:
    """The reference text's literal block holding a block's course-layout parameters."""
    e, f = params["W1"].shape
    block = ReferenceTransformerBlock(e, num_heads, dropout, f // e)
    if f % e:
        raise ValueError(f"W1: the literal block's hidden width is forward_expansion * E; "
                         f"got {f} for E = {e}")
    block.to(device=params["W1"].device, dtype=params["W1"].dtype)
    fill_native_attention(block.attention, params)
    _fill_linear(block.feed_forward[0], params["W1"], params["b1"])
    _fill_linear(block.feed_forward[2], params["W2"], params["b2"])
    _fill_norm(block.norm1, params["gamma1"], params["beta1"])
    _fill_norm(block.norm2, params["gamma2"], params["beta2"])
    return block


def transformer_classifier_from_scratch(
        model: scratch.models_attention.TransformerClassifier,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None) -> torchref.models_attention.TransformerClassifier:
    """The torch classifier with the scratch one's options and exact weights (dtype kept
    unless given; dropout masks are drawn per pass and not copied)."""
    if dtype is None:
        dtype = torch.from_numpy(model.params["W_in"][:0]).dtype
    tmodel = torchref.models_attention.TransformerClassifier(**model.options(), dtype=dtype,
                                                             device=device)
    copy_params(tmodel, model.params)
    return tmodel


def transformer_classifier_to_scratch(
        model: torchref.models_attention.TransformerClassifier
) -> scratch.models_attention.TransformerClassifier:
    """The scratch classifier with the torch one's options, exact weights and dtype."""
    params = params_to_numpy(model.params)
    smodel = scratch.models_attention.TransformerClassifier(**model.options(),
                                                            dtype=params["W_in"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel
