"""Learning-rate schedules for ``scratch.optim``: ``StepLR``, ``CosineAnnealingLR``,
``ReduceLROnPlateau``, with ``torch.optim.lr_scheduler``'s arguments and semantics.

A scheduler wraps an optimizer and rewrites its ``lr`` once per epoch (call
``step()`` after the epoch's optimizer updates; ``ReduceLROnPlateau.step(metric)``
after validation).  ``last_epoch`` counts the ``step`` calls; building a
scheduler with ``last_epoch=-1`` records ``optimizer.initial_lr = optimizer.lr``
(kept if already set) and takes one step, to epoch 0, as torch does.  A scheduler
resumed with ``last_epoch >= 0`` needs ``optimizer.initial_lr`` (a checkpoint of
``scratch.training.Trainer`` keeps it with the optimizer's other numbers).

StepLR(step_size, gamma)
    every ``step_size`` epochs ``lr <- lr * gamma``; in closed form
    ``lr_e = base_lr * gamma ** (e // step_size)``.

CosineAnnealingLR(T_max, eta_min)
    ``lr_e = eta_min + (base_lr - eta_min) (1 + cos(pi e / T_max)) / 2``: half a cosine
    from base_lr down to eta_min at e = T_max, then back up (period 2 T_max).  torch
    steps it *recursively*, from the current lr, so that a change made to the lr from
    outside is carried along:

        lr_e = eta_min + (lr_{e-1} - eta_min) (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T))

    and at the bottom of each period, where that ratio is 0/0
    (``(e - 1 - T) % 2T == 0``), ``lr_e = lr_{e-1} + (base_lr - eta_min)(1 - cos(pi / T)) / 2``.
    Left alone, both forms give the same numbers up to rounding; we compute torch's
    recursive form, operation for operation, so the two sides give the same floats.

ReduceLROnPlateau(mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps)
    ``step(metric)``: the metric improves when it beats ``best`` by the threshold: mode
    "min", rel: ``a < best (1 - threshold)``; abs: ``a < best - threshold`` (mode "max":
    ``a > best (1 + threshold)``, ``a > best + threshold``).  Each epoch that does not
    improve counts as bad; during ``cooldown`` epochs after a reduction the bad count is
    reset.  When more than ``patience`` epochs are bad in a row,
    ``lr <- max(lr * factor, min_lr)``, unless that changes lr by ``eps`` or less.

One divergence to know: the course's ``Momentum`` and ``Nesterov`` keep the velocity
with the lr inside (``v <- m v - lr g``), torch's SGD keeps the buffer without it
(``b <- m b + g``, step ``lr b``).  The two are the same rule only while lr is constant:
after a schedule changes lr, the course's velocity still carries the old lr for a
while.  ``SGD``, ``AdaGrad``, ``RMSprop`` and ``Adam`` read lr at every update and
agree with torch under any schedule.
"""

from __future__ import annotations

import math

from scratch._checks import check_non_negative, check_rate


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _check_finite_non_negative(name: str, value: float) -> None:
    check_non_negative(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")


class _Scheduled:
    """What both kinds of scheduler share: the optimizer, the last lr, a safe state."""

    optimizer: object
    _last_lr: list[float]

    def _set_optimizer(self, optimizer: object) -> None:
        if not hasattr(optimizer, "lr"):
            raise ValueError(f"optimizer: expected a scratch.optim optimizer (with an lr), "
                             f"got {type(optimizer).__name__}")
        self.optimizer = optimizer

    def get_last_lr(self) -> list[float]:
        """The lr set by the last ``step`` (a list of one, as torch's one per param group)."""
        return self._last_lr

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (numbers and lists: safe to save)."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


class LRScheduler(_Scheduled):
    """Base of the epoch schedulers: ``step()`` sets ``optimizer.lr = get_lr()``."""

    def __init__(self, optimizer: object, last_epoch: int = -1) -> None:
        self._set_optimizer(optimizer)
        _check_int("last_epoch", last_epoch, -1)
        if last_epoch == -1:
            if getattr(optimizer, "initial_lr", None) is None:
                optimizer.initial_lr = optimizer.lr
        elif getattr(optimizer, "initial_lr", None) is None:
            raise ValueError("last_epoch: resuming a schedule (last_epoch >= 0) needs "
                             "optimizer.initial_lr, the lr the schedule started from")
        self.base_lrs = [optimizer.initial_lr]
        self.last_epoch = last_epoch
        self._is_initial = True                # torch's first step, at construction
        self.step()
        self._is_initial = False

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimizer's lr."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()
        self._last_lr = [self.optimizer.lr]


class StepLR(LRScheduler):
    """``lr <- lr * gamma`` every ``step_size`` epochs (see the module docstring)."""

    def __init__(self, optimizer: object, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        _check_int("step_size", step_size, 1)
        _check_finite_non_negative("gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial lr to ``eta_min`` over ``T_max`` epochs (torch's recursive form)."""

    def __init__(self, optimizer: object, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check_int("T_max", T_max, 1)
        _check_finite_non_negative("eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        e, T, eta_min, base = self.last_epoch, self.T_max, self.eta_min, self.base_lrs[0]
        lr = self.optimizer.lr
        if self._is_initial:
            return lr
        if (e - 1 - T) % (2 * T) == 0:          # the bottom: the ratio below would be 0/0
            return lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min)


class ReduceLROnPlateau(_Scheduled):
    """Divide the lr by 1/``factor`` when ``step(metric)`` stops improving (module docstring)."""

    def __init__(self, optimizer: object, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8) -> None:
        self._set_optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        check_rate("factor", factor)
        _check_int("patience", patience, 0)
        _check_int("cooldown", cooldown, 0)
        for name, value in (("threshold", threshold), ("min_lr", min_lr), ("eps", eps)):
            _check_finite_non_negative(name, value)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter = 0, 0
        self._last_lr = [optimizer.lr]

    def is_better(self, a: float, best: float) -> bool:
        """Does ``a`` beat ``best`` by the threshold?"""
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metrics: float) -> None:
        """One epoch's metric (e.g. the validation loss)."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:            # bad epochs in cooldown do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [self.optimizer.lr]


SCHEDULERS: dict[str, type] = {"step": StepLR, "cosine": CosineAnnealingLR,
                               "plateau": ReduceLROnPlateau}
