"""Learning-rate schedules: scratch.lr_scheduler stepped next to torch.optim.lr_scheduler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
import torchref.optim as to
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

EPOCHS = 100


def torch_sgd(lr: float) -> torch.optim.SGD:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def lr_sequences(case: dict, last_epoch: int | None = None) -> tuple[list[float], list[float]]:
    """The lr after construction and after each of ``EPOCHS`` steps, on both sides."""
    opt, topt = so.SGD(case["lr"]), torch_sgd(case["lr"])
    kwargs = dict(case["kwargs"])
    if last_epoch is not None:             # resuming: the lr the schedule started from
        opt.initial_lr = topt.param_groups[0]["initial_lr"] = case["lr"]
        kwargs["last_epoch"] = last_epoch
    ours = getattr(so, case["name"])(opt, **kwargs)
    theirs = getattr(to, case["name"])(topt, **kwargs)
    lrs, tlrs = [opt.lr], [topt.param_groups[0]["lr"]]
    for epoch in range(EPOCHS):
        topt.step()                        # torch wants the optimizer's step first
        if case["name"] == "ReduceLROnPlateau":
            ours.step(case["metrics"][epoch])
            theirs.step(case["metrics"][epoch])
        else:
            ours.step()
            theirs.step()
        lrs.append(opt.lr)
        tlrs.append(topt.param_groups[0]["lr"])
        assert ours.get_last_lr() == theirs.get_last_lr()
    return lrs, tlrs


PLATEAU = {"name": "ReduceLROnPlateau", "lr": 0.5, "kwargs": {
    "mode": "min", "factor": 0.5, "patience": 0, "threshold": 0.0, "threshold_mode": "abs",
    "cooldown": 2, "min_lr": 0.01, "eps": 1e-8}, "metrics": [1.0] * EPOCHS}


@given(case=S.scheduler_case())
@example(case=PLATEAU)      # no patience, cooldown 2, down to min_lr, then eps blocks
@example(case={**PLATEAU, "kwargs": {**PLATEAU["kwargs"], "mode": "max", "patience": 3,
                                    "threshold_mode": "rel", "threshold": 0.01, "cooldown": 0},
               "metrics": [float(v) for v in np.tile([1.0, 1.005, 1.02, 1.0], EPOCHS // 4)]})
@example(case={"name": "CosineAnnealingLR", "lr": 0.1, "kwargs": {"T_max": 1, "eta_min": 0.0},
               "metrics": []})   # the bottom of the period every other epoch
@example(case={"name": "StepLR", "lr": 0.1, "kwargs": {"step_size": 1, "gamma": 0.5},
               "metrics": []})
def test_schedules_match_torch_every_epoch(case: dict) -> None:
    """100 epochs: every lr equals torch's, to the last bit (the same float operations in
    the same order; the tolerance policy is not needed)."""
    lrs, tlrs = lr_sequences(case)
    assert lrs == tlrs


@given(case=st.sampled_from(["StepLR", "CosineAnnealingLR"]).flatmap(S.scheduler_case),
       last_epoch=st.integers(0, 30))
def test_resumed_schedules_match_torch(case: dict, last_epoch: int) -> None:
    """``last_epoch >= 0`` with ``initial_lr`` set, as when resuming: same lrs as torch
    (torch's ReduceLROnPlateau takes no last_epoch)."""
    lrs, tlrs = lr_sequences(case, last_epoch)
    assert lrs == tlrs


def test_step_schedule_trains_mlp_in_lockstep() -> None:
    """SGD + StepLR on both sides: the schedule reaches the updates (6 epochs of 2 steps)."""
    x = np.random.default_rng(0).standard_normal((8, 5))
    t = np.arange(8) % 3
    model = sm.MLP([5, 4, 3], seed=0)
    tmodel = tm.MLP.from_scratch(model)
    opt, topt = so.SGD(0.5), torch.optim.SGD(tmodel.parameters(), lr=0.5)
    sched, tsched = so.StepLR(opt, 2, 0.3), to.StepLR(topt, 2, 0.3)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    for _ in range(6):
        for _ in range(2):
            opt.update(model.params, model.gradient(x, t))
            topt.zero_grad()
            tmodel.loss(xt, tt, train_flg=True).backward()
            topt.step()
        sched.step()
        tsched.step()
    assert opt.lr == topt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.3**3)
    for k, v in model.params.items():
        assert_close(tmodel.params[k], v, msg=f"{k} after 12 scheduled SGD steps")


def test_bad_arguments_name_the_argument() -> None:
    opt = so.SGD(0.1)
    cases = [(so.StepLR, {"step_size": 0}, "step_size: expected an integer >= 1"),
             (so.StepLR, {"step_size": 2, "gamma": -1.0}, "gamma: expected a non-negative"),
             (so.CosineAnnealingLR, {"T_max": 0}, "T_max: expected an integer >= 1"),
             (so.CosineAnnealingLR, {"T_max": 5, "eta_min": float("inf")},
              "eta_min: expected a .*finite"),
             (so.ReduceLROnPlateau, {"mode": "lowest"}, "mode: expected 'min' or 'max'"),
             (so.ReduceLROnPlateau, {"factor": 1.0}, r"factor: expected a number in \[0, 1\)"),
             (so.ReduceLROnPlateau, {"patience": -1}, "patience: expected an integer >= 0"),
             (so.ReduceLROnPlateau, {"threshold_mode": "pct"}, "threshold_mode: expected"),
             (so.ReduceLROnPlateau, {"min_lr": -0.1}, "min_lr: expected a non-negative")]
    for cls, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            cls(opt, **kwargs)
    with pytest.raises(ValueError, match="last_epoch: resuming a schedule"):
        so.StepLR(so.SGD(0.1), 3, last_epoch=4)
    with pytest.raises(ValueError, match=r"optimizer: expected a scratch\.optim optimizer"):
        so.StepLR(object(), 3)
