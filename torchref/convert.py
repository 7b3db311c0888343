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

import scratch.convnets
import scratch.layers
import scratch.models
import torchref.convnets
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


def specnet_from_scratch(model: scratch.convnets.SpecNet,
                         device: torch.device | str | None = None,
                         dtype: torch.dtype | None = None) -> torchref.convnets.SpecNet:
    """The ``torchref.models`` twin (``CNN``, ``DeepConvNet``) of a scratch model built from a
    layer spec, with its options and exact weights (dtype kept unless given; dropout masks
    are not copied)."""
    if dtype is None:
        dtype = torch.from_numpy(model.params["W1"][:0]).dtype
    cls = getattr(torchref.convnets, type(model).__name__)
    tmodel = cls(**model.options(), dtype=dtype, device=device)
    copy_params(tmodel, model.params)
    return tmodel


def specnet_to_scratch(model: torchref.convnets.SpecNet) -> scratch.convnets.SpecNet:
    """The ``scratch.models`` twin of a torch ``CNN`` / ``DeepConvNet``: options, weights, dtype."""
    params = params_to_numpy(model.params)
    cls = getattr(scratch.convnets, type(model).__name__)
    smodel = cls(**model.options(), dtype=params["W1"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel
