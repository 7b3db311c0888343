"""Mirror of ``scratch.functions`` on torch ops; derivatives come from autograd."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def as_float_tensor(x: torch.Tensor | float) -> torch.Tensor:
    """``x`` as a tensor; floating dtypes are kept, others become float64."""
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.float64)


def autocast_enabled(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for this device type (it mixes dtypes on purpose)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:   # torch < 2.4: no device argument
        return torch.is_autocast_enabled() if device_type == "cuda" else \
            torch.is_autocast_cpu_enabled()


def check_input_dtype(x: torch.Tensor, weight: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` when ``x``'s dtype is not the parameters' (outside autocast).

    torch's own message ("mat1 and mat2 must have the same dtype") names neither
    the input nor the fix; NumPy, on the scratch side, would have promoted silently.
    """
    if x.dtype != weight.dtype and not autocast_enabled(x.device.type):
        raise ValueError(f"{name}: dtype {x.dtype} does not match the model's parameters "
                         f"({weight.dtype}); convert the input with {name}.to({weight.dtype}) "
                         f"or build the model with dtype={x.dtype}")


def _autograd_derivative(fn: Callable[[torch.Tensor], torch.Tensor],
                         x: torch.Tensor) -> torch.Tensor:
    """Element-wise derivative of an element-wise fn, by autograd."""
    x = as_float_tensor(x).detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad


def step_function(x: torch.Tensor) -> torch.Tensor:
    x = as_float_tensor(x)
    return (x > 0).to(x.dtype)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(as_float_tensor(x))


def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    return _autograd_derivative(torch.sigmoid, x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(as_float_tensor(x))


def tanh_grad(x: torch.Tensor) -> torch.Tensor:
    return _autograd_derivative(torch.tanh, x)


def relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(as_float_tensor(x))


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    return _autograd_derivative(F.relu, x)


def identity_function(x: torch.Tensor) -> torch.Tensor:
    return as_float_tensor(x)


def softmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return F.softmax(as_float_tensor(x), dim=axis)


def log_softmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return F.log_softmax(as_float_tensor(x), dim=axis)
