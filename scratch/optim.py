"""Optimizers with the course's interface: ``update(params, grads)``.

``params`` and ``grads`` are dicts of arrays with the same keys; ``update``
changes the arrays in ``params`` in place (the model holds the same arrays).
Each optimizer keeps its state (velocities, squared-gradient sums, moments)
in dicts keyed like ``params``, created at the first ``update``.

Notation: ``g`` is ``grads[key]``, ``W`` is ``params[key]``, ``t`` counts the
updates from 1, products and powers are element-wise.  Every docstring gives
the course's formula and, next to it, how ``torch.optim`` writes the same
rule (``torchref.optim`` configures torch to the course's formula; the parity
tests pin any remaining difference exactly).
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_param_keys, check_positive, check_rate


def _check_grads(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` when grads lacks a parameter, a shape differs, or a parameter
    is not a floating-point array or a gradient not numbers (checked for *every* key before
    an update changes anything, so a bad gradient leaves parameters and state untouched).

    Non-finite gradient values are accepted: as in ``torch.optim``, they make the
    parameters they reach NaN or inf.
    """
    missing = sorted(set(params) - set(grads))
    if missing:
        raise ValueError(f"grads: missing entries for parameters {missing}")
    for key, p in params.items():
        if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
            raise ValueError(f"params[{key!r}]: expected a floating-point array (updated in "
                             f"place), got {type(p).__name__} {getattr(p, 'dtype', '')}")
        if np.shape(grads[key]) != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape}, "
                             f"got {np.shape(grads[key])}")
        if np.asarray(grads[key]).dtype.kind not in "fiu":
            raise ValueError(f"grads[{key!r}]: expected numbers, got dtype "
                             f"{np.asarray(grads[key]).dtype}")


class _Optimizer:
    """What every optimizer here shares: the parameter keys are fixed by the first update.

    The state (velocities, moments) is kept per key from the first ``update``; a later call
    whose ``params`` has other keys is a ``ValueError`` naming them (``torchref.optim``
    does the same): make a new optimizer for a new set of parameters.
    """

    _keys: tuple[str, ...] | None = None

    def check(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Validate everything an update will touch, before it touches anything."""
        keys = check_param_keys(self._keys, tuple(params))
        _check_grads(params, grads)
        self._keys = keys


def _zeros_like(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One zero array per parameter (an optimizer's initial state)."""
    return {key: np.zeros_like(p) for key, p in params.items()}


class SGD(_Optimizer):
    """Stochastic gradient descent: ``W <- W - lr * dL/dW`` for every parameter."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = check_positive("lr", lr)

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        for key, p in params.items():
            p -= self.lr * grads[key]


class _Velocity(_Optimizer):
    """Momentum and Nesterov: an lr, a momentum and one velocity per parameter."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        check_positive("lr", lr)
        check_rate("momentum", momentum)
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] | None = None

    def check(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Validate, then make the velocities (zeros) on the first update."""
        super().check(params, grads)
        if self.v is None:
            self.v = _zeros_like(params)


class Momentum(_Velocity):
    """SGD with momentum: a ball rolling down the loss surface.

        v <- momentum * v - lr * g          (v starts at 0)
        W <- W + v

    torch (``SGD(momentum=m)``, dampening 0) keeps ``b <- m b + g`` (b_1 = g_1)
    and steps ``W <- W - lr b``: the same rule, with ``v = -lr * b`` at every
    step as long as lr is constant.
    """

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        for key, p in params.items():
            # momentum 0 is plain SGD, as in torch (which keeps no buffer then): 0 * v would
            # turn an infinite velocity into NaN
            decayed = self.momentum * self.v[key] if self.momentum else 0.0
            self.v[key] = decayed - self.lr * grads[key]
            p += self.v[key]


class Nesterov(_Velocity):
    """Nesterov's accelerated gradient, in the course's form.

        W <- W + momentum^2 * v - (1 + momentum) * lr * g
        v <- momentum * v - lr * g          (v starts at 0)

    Nesterov evaluates the gradient at the look-ahead point ``W + m v``; the
    course rewrites the variable as that look-ahead point, which gives the
    two lines above.  torch (``SGD(momentum=m, nesterov=True)``) computes
    ``b <- m b + g`` and ``W <- W - lr (g + m b)``; expanding b,
    ``W <- W - lr ((1 + m) g + m^2 b_old)``: the course's rule with
    ``v = -lr * b``.  Same formula, different bookkeeping.
    """

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        m = self.momentum
        for key, p in params.items():
            decayed = m * self.v[key] if m else 0.0     # momentum 0: plain SGD (see Momentum)
            p += m * decayed - (1 + m) * self.lr * grads[key]
            self.v[key] = decayed - self.lr * grads[key]


class AdaGrad(_Optimizer):
    """Per-weight learning rates that shrink with the gradients seen so far.

        h <- h + g^2                        (h starts at 0)
        W <- W - lr * g / (sqrt(h) + eps)

    ``eps`` (the course's 1e-7) keeps the first steps finite where h is 0;
    it sits outside the square root, as in torch's ``Adagrad``, whose default
    eps is 1e-10 (``torchref.optim.AdaGrad`` passes 1e-7).  torch's
    ``lr_decay`` (0) and ``initial_accumulator_value`` (0) are the course's rule.
    """

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        check_positive("lr", lr)
        check_positive("eps", eps)
        self.lr, self.eps = lr, eps
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        if self.h is None:
            self.h = _zeros_like(params)
        for key, p in params.items():
            self.h[key] += grads[key] * grads[key]
            p -= self.lr * grads[key] / (np.sqrt(self.h[key]) + self.eps)


class RMSprop(_Optimizer):
    """AdaGrad that forgets: h is an exponential moving average of g^2.

        h <- decay_rate * h + (1 - decay_rate) * g^2     (h starts at 0)
        W <- W - lr * g / (sqrt(h) + eps)

    torch's ``RMSprop(alpha=decay_rate)`` is this rule (eps outside the root
    too); its defaults differ: alpha 0.99 equals the course's decay_rate, eps
    1e-8 is not the course's 1e-7 (``torchref.optim.RMSprop`` passes 1e-7).
    """

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, eps: float = 1e-7) -> None:
        check_positive("lr", lr)
        check_rate("decay_rate", decay_rate)
        check_positive("eps", eps)
        self.lr, self.decay_rate, self.eps = lr, decay_rate, eps
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        if self.h is None:
            self.h = _zeros_like(params)
        for key, p in params.items():
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            p -= self.lr * grads[key] / (np.sqrt(self.h[key]) + self.eps)


class Adam(_Optimizer):
    """Momentum (first moment m) plus RMSprop (second moment v), bias-corrected.

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        W <- W - lr_t * m / (sqrt(v) + eps)

    The course writes the averages incrementally, ``v += (1 - beta2) * (g^2 -
    v)``: the same number in exact arithmetic, but ``g^2 - v`` cancels when
    v is much larger than g^2, and with a small beta2 the error is all of v
    (beta2 = 0, v = 81, g^2 = 4e-6 gives v = 0 in float32 instead of 4e-6,
    and a step 5000 times too long).  Both terms of ``beta2 v + (1 - beta2)
    g^2`` are >= 0, so that form never cancels; torch uses it for v (and
    ``lerp`` for m).

    m and v start at 0, so early averages are too small; dividing by
    ``1 - beta^t`` undoes that.  The course folds both corrections into
    ``lr_t``.  torch's ``Adam`` corrects m and v themselves:

        W <- W - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps_torch)

    Multiplying through shows the two agree exactly when
    ``eps_torch = eps / sqrt(1 - beta2^t)``: the course's eps counts more in
    early steps (3.2e-6 at t = 1 with beta2 = 0.999) and tends to eps.
    ``torchref.optim.Adam`` sets that eps before each torch step; the parity
    test also checks native ``torch.optim.Adam`` against this class with the
    reverse rescaling.  ``eps`` is an attribute and may be changed between steps.
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-7) -> None:
        check_positive("lr", lr)
        check_rate("beta1", beta1)
        check_rate("beta2", beta2)
        check_positive("eps", eps)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.iter = 0
        self.m: dict[str, np.ndarray] | None = None
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.check(params, grads)
        if self.m is None:
            self.m, self.v = _zeros_like(params), _zeros_like(params)
        self.iter += 1
        lr_t = self.lr * (1.0 - self.beta2 ** self.iter) ** 0.5 / (1.0 - self.beta1 ** self.iter)
        for key, p in params.items():
            g = grads[key]
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * g
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * (g * g)
            p -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + self.eps)


# name -> class, for command-line choices (scripts/train.py --optimizer).
OPTIMIZERS: dict[str, type] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
    "rmsprop": RMSprop, "adam": Adam,
}


def clip_grads(grads: dict[str, np.ndarray], max_norm: float) -> np.floating:
    """Scale every gradient by ``min(1, max_norm / (norm + 1e-6))``, in place; return ``norm``.

    ``norm = sqrt(sum_k ||g_k||^2)`` is the global L2 norm over every array of
    ``grads`` together (as if they were one vector), computed as torch does,
    the norm of the per-array norms.  Clipping the whole vector keeps its
    direction, which is why recurrent networks (whose gradients can explode
    over many steps) are trained with it.  The 1e-6 and the multiplication by
    exactly 1 when nothing is clipped are ``torch.nn.utils.clip_grad_norm_``'s;
    a non-finite norm makes the scale nan (torch's default,
    ``error_if_nonfinite=False``).  Returns the norm before clipping, in the
    gradients' dtype.
    """
    check_positive("max_norm", max_norm)
    arrays = list(grads.values())
    if not arrays:
        return np.float64(0.0)
    dtype = np.result_type(*arrays)
    norm = np.linalg.norm(np.array([np.linalg.norm(g.reshape(-1)) for g in arrays], dtype=dtype))
    with np.errstate(invalid="ignore"):
        scale = min(dtype.type(max_norm) / (norm + dtype.type(1e-6)), dtype.type(1.0))
    for g in arrays:
        g *= scale
    return dtype.type(norm)

# Learning-rate schedules live in scratch.lr_scheduler; re-exported here.
from scratch.lr_scheduler import (  # noqa: E402, F401 (re-export)
    SCHEDULERS,
    CosineAnnealingLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)
