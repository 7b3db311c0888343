"""The components table, training toolkit: Dropout, BatchNormalization and the optimizers.

A topical module of ``torchref.components`` (which imports it): each block
registers its rows in ``torchref.registry``, exactly as a user's own module
does for ``python -m torchref.report --module``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import scratch.batchnorm as sbn
import scratch.dropout as sdo
import scratch.optim as so
import torchref.batchnorm as tbn
import torchref.dropout as tdo
import torchref.optim as to
from torchref.parity import Case, Component, Sides
from torchref.registry import inputs, register

# ---- dropout (one keep-mask shared by both sides) and batch normalization --------------------

class SharedMaskDropout(sdo.Dropout):
    """``scratch.dropout.Dropout`` training with the given keep-mask (its ``fixed_mask``)."""

    def __init__(self, mask: np.ndarray, ratio: float, inverted: bool) -> None:
        super().__init__(ratio, inverted)
        self.fixed_mask = mask


class TorchSharedMaskDropout(tdo.Dropout):
    """``torchref.dropout.Dropout`` training with the given keep-mask (its ``fixed_mask``)."""

    def __init__(self, mask: torch.Tensor, ratio: float, inverted: bool) -> None:
        super().__init__(ratio, inverted)
        self.fixed_mask = mask


def dropout_native(mask: torch.Tensor, ratio: float, inverted: bool, x: torch.Tensor,
                   train_flg: bool) -> torch.Tensor:
    """torch's own kernels: ``F.dropout(training=False)`` in eval; in training, the masked
    scaling that ``F.dropout`` applies after drawing its mask (``aten.native_dropout_backward``:
    ``x * mask / (1 - ratio)``, differentiable), as torch cannot take a mask from outside.
    The course's convention multiplies both by ``1 - ratio``."""
    keep = 1.0 - ratio
    if train_flg:
        out = torch.ops.aten.native_dropout_backward(x, mask, 1.0 / keep)
    else:
        out = F.dropout(x, ratio, training=False)
    return out if inverted else out * keep


def batchnorm_native(gamma: torch.Tensor, beta: torch.Tensor, momentum: float,
                     running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor,
                     train_flg: bool) -> torch.Tensor:
    """``F.batch_norm`` on x flattened to (N, D): batch statistics in training, the running
    ones in eval; eps 1e-6, the course's default (the running averages are pinned in
    parity_tests/test_batchnorm.py: F.batch_norm updates running_var with the unbiased
    variance)."""
    stats = (None, None) if train_flg else (running_mean, running_var)
    return F.batch_norm(x.flatten(1), *stats, gamma, beta, training=train_flg,
                        eps=1e-6).reshape(x.shape)


for _mode, _train in (("train", True), ("eval", False)):
    register(Component(f"Dropout({_mode})", SharedMaskDropout, TorchSharedMaskDropout,
                       inputs("dropout_layer_case", train=_train), native=dropout_native,
                       group="layers"))
    register(Component(f"BatchNormalization({_mode})", sbn.BatchNormalization,
                       tbn.BatchNormalization, inputs("batchnorm_layer_case", train=_train),
                       params=("gamma", "beta"), native=batchnorm_native, group="layers"))


# ---- optimizers: "forward" = the parameter after each of 1 to 6 updates with drawn gradients --

NOT_DIFFERENTIATED = "an update step is not differentiated; forward compares its result"


def _optimizer_runners(name: str) -> tuple[Callable[..., Sides], Callable[..., Sides]]:
    def run_scratch(case: Case, dout_seed: int) -> Sides:
        (w, grads), (kwargs,) = case.args, case.init
        w, opt, after = w.copy(), so.OPTIMIZERS[name](**kwargs), []
        for g in grads:
            opt.update({"W": w}, {"W": g})
            after.append(w.copy())
        return {"W after each step": np.stack(after)}, {}

    def run_torch(case: Case, device: torch.device, dout_seed: int) -> Sides:
        (w, grads), (kwargs,) = case.args, case.init
        wt = torch.tensor(w, device=device, requires_grad=True)
        opt, after = to.OPTIMIZERS[name](**kwargs), []
        for g in grads:
            opt.update({"W": wt}, {"W": torch.from_numpy(g).to(device)})
            after.append(wt.detach().clone())
        return {"W after each step": torch.stack(after)}, {}
    return run_scratch, run_torch


for _name, _cls in so.OPTIMIZERS.items():
    _run_s, _run_t = _optimizer_runners(_name)
    register(Component(_cls.__name__, _cls, to.OPTIMIZERS[_name],
                       inputs("optimizer_steps_case", optimizer=_name), run_scratch=_run_s,
                       run_torch=_run_t, skip={"backward": NOT_DIFFERENTIATED},
                       group="optimizers"))
