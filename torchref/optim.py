"""Mirror of ``scratch.optim``: the course's ``update(params, grads)`` on ``torch.optim``.

``X(...).update(params, grads)`` hands the tensors in ``params`` (leaf
tensors, updated in place) and their gradients to the ``torch.optim``
optimizer configured to the course's formula, and takes one step.  For an
``nn.Module`` use ``X(...).torch_optimizer(model.parameters())`` (or param
groups, e.g. for weight decay) and the usual ``zero_grad/backward/step``.

Course class -> torch configuration (see each ``scratch.optim`` docstring for
the algebra):

* ``SGD(lr)``                -> ``torch.optim.SGD(lr)``
* ``Momentum(lr, m)``        -> ``torch.optim.SGD(lr, momentum=m)``; torch's
  buffer b relates to the course's velocity as ``v = -lr * b``.
* ``Nesterov(lr, m)``        -> ``torch.optim.SGD(lr, momentum=m, nesterov=True)``;
  the same rule written with ``v = -lr * b``.
* ``AdaGrad(lr, eps)``       -> ``torch.optim.Adagrad(lr, eps=eps)`` (torch's
  default eps is 1e-10, the course's 1e-7; both outside the root).
* ``RMSprop(lr, d, eps)``    -> ``torch.optim.RMSprop(lr, alpha=d, eps=eps)``
  (torch's default eps is 1e-8).
* ``Adam(lr, b1, b2, eps)``  -> ``CourseAdam``: ``torch.optim.Adam`` whose eps
  is set to ``eps / sqrt(1 - b2^t)`` before step t, which is exactly the
  course's ``lr_t`` form; plain ``torch.optim.Adam(eps=e)`` is the course's
  rule with ``eps = e * sqrt(1 - b2^t)`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from scratch._checks import check_param_keys, check_positive, check_rate


class CourseAdam(torch.optim.Adam):
    """``torch.optim.Adam`` with the course's epsilon placement.

    torch divides by ``sqrt(v) / sqrt(1 - beta2^t) + eps``; the course by
    ``(sqrt(v) + eps) / sqrt(1 - beta2^t)``.  Before each step this sets every
    group's eps to ``course_eps / sqrt(1 - beta2^t)`` and lets torch do the rest.
    ``t`` is the group's step count (the largest over its parameters) plus one.
    """

    def __init__(self, params: Iterable, lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7,
                 **kwargs: Any) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, **kwargs)
        for group in self.param_groups:
            group["course_eps"] = group["eps"]

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        for group in self.param_groups:
            course_eps = group.setdefault("course_eps", group["eps"])
            steps = [float(self.state[p]["step"]) for p in group["params"]
                     if "step" in self.state[p]]
            t = (max(steps) if steps else 0.0) + 1.0
            group["eps"] = course_eps / (1.0 - group["betas"][1] ** t) ** 0.5
        return super().step(closure)


class SGD:
    """``W <- W - lr * dL/dW``, performed by ``torch.optim.SGD``."""

    optimizer_class: type[torch.optim.Optimizer] = torch.optim.SGD

    def __init__(self, lr: float = 0.01) -> None:
        check_positive("lr", lr)
        self.lr = lr
        self.optimizer: torch.optim.Optimizer | None = None
        self.keys: list[str] = []

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr}

    def torch_optimizer(self, params: Iterable) -> torch.optim.Optimizer:
        """The ``torch.optim`` optimizer of this rule over ``params`` (tensors or param groups)."""
        return self.optimizer_class(params, **self.optimizer_kwargs())

    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        """One step; everything is validated first, so a bad gradient changes nothing.

        The keys are fixed by the first update (another set is a ``ValueError`` naming the
        keys, as in ``scratch.optim``); the state follows the key, also when ``params``
        hands a new tensor for it (a reloaded model).
        """
        self.keys = list(check_param_keys(tuple(self.keys) if self.optimizer else None,
                                          tuple(params)))
        missing = sorted(set(params) - set(grads))
        if missing:
            raise ValueError(f"grads: missing entries for parameters {missing}")
        for key, p in params.items():
            if not isinstance(p, torch.Tensor) or not p.is_floating_point():
                raise ValueError(f"params[{key!r}]: expected a floating-point tensor (updated "
                                 f"in place), got {type(p).__name__} {getattr(p, 'dtype', '')}")
            g = grads[key]
            if not isinstance(g, torch.Tensor) or g.is_complex() or g.dtype == torch.bool:
                raise ValueError(f"grads[{key!r}]: expected a real tensor, got "
                                 f"{type(g).__name__} {getattr(g, 'dtype', '')}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{key!r}]: expected shape {tuple(p.shape)}, "
                                 f"got {tuple(g.shape)}")
        if self.optimizer is None:
            self.optimizer = self.torch_optimizer([params[k] for k in self.keys])
        group = self.optimizer.param_groups[0]["params"]
        for i, key in enumerate(self.keys):
            if group[i] is not params[key]:          # a new tensor for the key: move its state
                state = self.optimizer.state.pop(group[i], None)
                group[i] = params[key]
                if state is not None:
                    self.optimizer.state[params[key]] = state
        for key, p in params.items():
            p.grad = grads[key].detach().to(p.dtype)
        with torch.no_grad():
            self.optimizer.step()


class Momentum(SGD):
    """``v <- m v - lr g; W <- W + v`` as ``torch.optim.SGD(momentum=m)`` (v = -lr * buffer)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        check_rate("momentum", momentum)
        self.momentum = momentum

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum}


class Nesterov(Momentum):
    """The course's Nesterov as ``torch.optim.SGD(momentum=m, nesterov=True)``.

    torch refuses ``nesterov=True`` with momentum 0, where the course's rule is
    plain SGD; that case is passed as plain SGD.
    """

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.momentum > 0}


class AdaGrad(SGD):
    """``h += g^2; W -= lr g / (sqrt(h) + eps)`` as ``torch.optim.Adagrad(eps=eps)``."""

    optimizer_class = torch.optim.Adagrad

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        super().__init__(lr)
        check_positive("eps", eps)
        self.eps = eps

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr, "eps": self.eps}


class RMSprop(SGD):
    """``h = d h + (1 - d) g^2; W -= lr g / (sqrt(h) + eps)`` as ``torch.optim.RMSprop``."""

    optimizer_class = torch.optim.RMSprop

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, eps: float = 1e-7) -> None:
        super().__init__(lr)
        check_rate("decay_rate", decay_rate)
        check_positive("eps", eps)
        self.decay_rate, self.eps = decay_rate, eps

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr, "alpha": self.decay_rate, "eps": self.eps}


class Adam(SGD):
    """The course's Adam as ``CourseAdam`` (``torch.optim.Adam`` with eps rescaled per step)."""

    optimizer_class = CourseAdam

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-7) -> None:
        super().__init__(lr)
        check_rate("beta1", beta1)
        check_rate("beta2", beta2)
        check_positive("eps", eps)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr, "betas": (self.beta1, self.beta2), "eps": self.eps}


# name -> class, for command-line choices (scripts/train.py --optimizer).
OPTIMIZERS: dict[str, type] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
    "rmsprop": RMSprop, "adam": Adam,
}


def clip_grads(grads: dict[str, torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` on a dict of gradient tensors (in place); returns
    the norm before clipping.  See ``scratch.optim.clip_grads``."""
    check_positive("max_norm", max_norm)
    holders = []
    for g in grads.values():
        p = torch.empty_like(g)
        p.grad = g                          # the same tensor: clip_grad_norm_ scales it in place
        holders.append(p)
    if not holders:
        return torch.tensor(0.0, dtype=torch.float64)
    return torch.nn.utils.clip_grad_norm_(holders, max_norm)

# Learning-rate schedules (torch's own) are in torchref.lr_scheduler; re-exported here.
from torchref.lr_scheduler import (  # noqa: E402, F401 (re-export)
    SCHEDULERS,
    CosineAnnealingLR,
    ReduceLROnPlateau,
    StepLR,
)
