"""Checks shared by the model tests (MLP, SimpleConvNet, the optimizers on them).

Each takes a scratch model and its torch mirror (``Tmodel.from_scratch``) with the
same batch on both sides: x, t as arrays and xt, tt as tensors on the device.
"""

from __future__ import annotations

import numpy as np
import torch

import scratch.models as sm
import torchref.models as tm
from torchref.tolerance import assert_close


def set_shared_masks(model: object, tmodel: torch.nn.Module, masks: list[np.ndarray],
                     device: torch.device) -> None:
    """One fixed dropout mask per Dropout layer, the same on both sides."""
    for ours, theirs, mask in zip(model.layers_of(sm.Dropout), tmodel.layers_of(tm.Dropout),
                                  masks, strict=True):
        ours.fixed_mask, theirs.fixed_mask = mask, torch.from_numpy(mask).to(device)


def assert_running_stats_close(model: object, tmodel: torch.nn.Module, msg: str = "") -> None:
    for ours, theirs in zip(model.layers_of(sm.BatchNormalization),
                            tmodel.layers_of(tm.BatchNormalization), strict=True):
        assert_close(theirs.running_mean, ours.running_mean, msg=f"running_mean{msg}")
        assert_close(theirs.running_var, ours.running_var, msg=f"running_var{msg}")


def assert_model_parity(model: object, tmodel: torch.nn.Module, x: np.ndarray,
                        t: np.ndarray, xt: torch.Tensor, tt: torch.Tensor) -> None:
    """Train-mode loss and every gradient (W with lambda W, b, gamma, beta), the running
    statistics it leaves, and test-mode logits, loss and accuracy agree."""
    assert_close(tmodel.loss(xt, tt, train_flg=True), model.loss(x, t, train_flg=True),
                 msg="train loss (with the L2 term)")
    grads, tgrads = model.gradient(x, t), tmodel.gradient(xt, tt)
    assert grads.keys() == tgrads.keys() == model.params.keys()
    for k in grads:
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")
    assert_running_stats_close(model, tmodel)
    assert_close(tmodel.predict(xt), model.predict(x), msg="test-mode logits")
    assert_close(tmodel.loss(xt, tt), model.loss(x, t), msg="test-mode loss")
    assert model.accuracy(x, t) == tmodel.accuracy(xt, tt)


def steps_in_lockstep(model: object, tmodel: torch.nn.Module, opt: object,
                      topt: torch.optim.Optimizer, batch: tuple, steps: int) -> None:
    """``steps`` training steps on the same batch (x, t, xt, tt): the course's
    ``opt.update(params, gradient)`` on scratch, ``loss.backward(); step()`` on torch."""
    x, t, xt, tt = batch
    for _ in range(steps):
        opt.update(model.params, model.gradient(x, t))
        topt.zero_grad()
        tmodel.loss(xt, tt, train_flg=True).backward()
        topt.step()


def assert_same_params(model: object, tmodel: torch.nn.Module, msg: str) -> None:
    for k, v in model.params.items():
        assert_close(tmodel.params[k], v, msg=f"{k} {msg}")
