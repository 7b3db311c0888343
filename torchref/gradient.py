"""Mirror of ``scratch.gradient``: the same central differences on tensors.

torch has no numerical-gradient function of this shape (``torch.autograd.
gradcheck`` compares, it does not return one), so the loop is written here;
the perturbed copy is float64 on x's device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scratch._checks import check_positive


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    check_positive("h", h)
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       h: float = 1e-4) -> torch.Tensor:
    check_positive("h", h)
    xc = torch.as_tensor(x).detach().to(torch.float64).clone()
    grad = torch.zeros_like(xc)
    flat, gflat = xc.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            orig = flat[i].item()
            flat[i] = orig + h
            f_plus = float(f(xc))
            flat[i] = orig - h
            f_minus = float(f(xc))
            flat[i] = orig
            gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def params_numerical_gradient(loss: Callable[[], torch.Tensor], params: dict[str, torch.Tensor],
                              h: float = 1e-4) -> dict[str, torch.Tensor]:
    """``numerical_gradient`` of a model's ``loss()`` with respect to each tensor of ``params``
    (views of the model's parameters, perturbed in place and restored, as in scratch)."""
    grads = {}
    with torch.no_grad():
        for key, value in params.items():
            saved = value.detach().clone()

            def loss_at(w: torch.Tensor, value: torch.Tensor = value) -> torch.Tensor:
                value.copy_(w)
                return loss()
            try:
                grads[key] = numerical_gradient(loss_at, saved, h)
            finally:
                value.copy_(saved)
    return grads


def gradient_descent(f: Callable[[torch.Tensor], torch.Tensor], init_x: torch.Tensor,
                     lr: float = 0.01, step_num: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise f with ``torch.optim.SGD``, the gradient taken by autograd."""
    check_positive("lr", lr)
    if step_num < 0:
        raise ValueError(f"step_num: expected a non-negative integer, got {step_num!r}")
    x = torch.as_tensor(init_x, dtype=torch.float64).detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([x], lr=lr)
    history = torch.empty((step_num, *x.shape), dtype=x.dtype, device=x.device)
    for i in range(step_num):
        history[i] = x.detach()
        opt.zero_grad()
        f(x).backward()
        opt.step()
    return x.detach(), history
