"""The one place parameters cross between ``scratch`` and ``torchref``.

Both sides key parameters the course's way (``W1, b1, ...``, W in (in, out));
``torchref.layers.Affine`` stores the transpose as ``nn.Linear`` does and is the
only code that transposes.  Values are copied exactly (no dtype change unless
asked): a round trip scratch -> torch -> scratch gives bit-identical arrays.
"""

from __future__ import annotations

import numpy as np
import torch

import scratch.models
import torchref.models


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor on any device."""
    return t.detach().cpu().numpy().copy()


def params_to_torch(params: dict[str, np.ndarray], device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Arrays -> tensors, same keys and layout."""
    return {k: torch.tensor(v, device=device, dtype=dtype) for k, v in params.items()}


def params_to_numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors -> arrays, same keys and layout."""
    return {k: to_numpy(v) for k, v in params.items()}


def load_params(model: torchref.models.MLP, params: dict[str, np.ndarray]) -> None:
    """Copy course-layout arrays into a torch model, with shape checks."""
    for i, layer in enumerate(model.affines, start=1):
        W, b = params[f"W{i}"], params[f"b{i}"]
        if tuple(W.shape) != tuple(layer.W.shape) or tuple(b.shape) != tuple(layer.b.shape):
            raise ValueError(f"params['W{i}']/['b{i}']: expected shapes {tuple(layer.W.shape)}"
                             f"/{tuple(layer.b.shape)}, got {W.shape}/{b.shape}")
        layer.load_course(torch.as_tensor(W).to(layer.weight),
                          torch.as_tensor(b).to(layer.bias))


def mlp_from_scratch(model: scratch.models.MLP, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> torchref.models.MLP:
    """A ``torchref.models.MLP`` with the scratch model's weights (dtype kept unless given)."""
    if dtype is None:
        dtype = torch.from_numpy(model.params["W1"][:0]).dtype
    tmodel = torchref.models.MLP(model.sizes, model.activation, dtype=dtype, device=device)
    load_params(tmodel, model.params)
    return tmodel


def mlp_to_scratch(model: torchref.models.MLP) -> scratch.models.MLP:
    """A ``scratch.models.MLP`` with the torch model's weights and dtype."""
    params = params_to_numpy(model.params)
    smodel = scratch.models.MLP(model.sizes, model.activation, dtype=params["W1"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
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
    """A ``torchref.models.SimpleConvNet`` with the scratch model's weights (dtype kept)."""
    if dtype is None:
        dtype = torch.from_numpy(model.params["W1"][:0]).dtype
    tmodel = torchref.models.SimpleConvNet(model.input_dim, model.conv_param, model.hidden_size,
                                           model.output_size, dtype=dtype, device=device)
    copy_params(tmodel, model.params)
    return tmodel


def convnet_to_scratch(model: torchref.models.SimpleConvNet) -> scratch.models.SimpleConvNet:
    """A ``scratch.models.SimpleConvNet`` with the torch model's weights and dtype."""
    params = params_to_numpy(model.params)
    smodel = scratch.models.SimpleConvNet(model.input_dim, model.conv_param, model.hidden_size,
                                          model.output_size, dtype=params["W1"].dtype)
    for key, value in params.items():
        smodel.params[key][...] = value
    return smodel
