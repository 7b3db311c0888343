"""TimeAffine, TimeSoftmaxWithLoss (padding ignored) and clip_grads beyond the components table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given

import scratch.optim as so
import torchref.optim as to
import torchref.time_layers as ttl
from scratch.gradient import gradcheck
from scratch.time_layers import TimeAffine, TimeSoftmaxWithLoss
from torchref.parity import Case
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


@given(case=S.time_targets_case(np.float64, nonfinite=False))
def test_loss_gradient_vs_central_differences(case: Case) -> None:
    (xs, ts), (ignore,) = case.args, case.init
    xs = xs / np.maximum(1.0, np.abs(xs).max() / 10)      # unit scale: h = 1e-6 is resolved

    def grad(xs: np.ndarray) -> np.ndarray:
        layer = TimeSoftmaxWithLoss(ignore)
        layer.forward(xs, ts)
        return layer.backward()
    gradcheck(lambda xs: float(TimeSoftmaxWithLoss(ignore).forward(xs, ts)), xs,
              grad).raise_if_failed()


@given(case=S.time_affine_case(np.float64, nonfinite=False))
def test_time_affine_vs_central_differences(case: Case) -> None:
    gradcheck(TimeAffine(*case.init), case.args[0]).raise_if_failed()


def test_padding_is_ignored_and_all_padding_is_nan_with_zero_gradient(
        device: torch.device) -> None:
    xs = np.random.default_rng(0).standard_normal((2, 3, 4))
    ts = np.array([[1, -100, 3], [-100, -100, 0]])
    layer = TimeSoftmaxWithLoss()
    kept = [(0, 0), (0, 2), (1, 2)]
    expected = -np.mean([xs[i, j, ts[i, j]] - np.log(np.exp(xs[i, j]).sum()) for i, j in kept])
    np.testing.assert_allclose(layer.forward(xs, ts), expected, rtol=1e-12)
    assert np.all(layer.backward()[ts == -100] == 0)
    everything = np.full((2, 3), -100)
    xt = torch.from_numpy(xs).to(device).requires_grad_(True)
    loss_t = ttl.TimeSoftmaxWithLoss()(xt, torch.from_numpy(everything).to(device))
    loss_t.backward()
    assert np.isnan(layer.forward(xs, everything)) and torch.isnan(loss_t)
    assert np.all(layer.backward() == 0) and torch.all(xt.grad == 0)


@pytest.mark.parametrize(("xs", "ts", "message"), [
    (np.zeros((2, 3)), np.zeros((2, 3), int), r"^xs: expected scores of shape \(N, T, C\)"),
    (np.zeros((2, 3, 4)), np.zeros((2, 4), int), r"^ts: expected integer targets of shape"),
    (np.zeros((2, 3, 4)), np.zeros((2, 3)), r"^ts: expected integer class indices$"),
    (np.zeros((2, 3, 4)), np.full((2, 3), 4), r"^ts: expected class indices in \[0, 4\) or "
                                                r"ignore_index -100, got min 4, max 4$"),
])
def test_bad_targets_same_message(xs: np.ndarray, ts: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message) as ours:
        TimeSoftmaxWithLoss().forward(xs, ts)
    with pytest.raises(ValueError) as theirs:
        ttl.TimeSoftmaxWithLoss()(torch.from_numpy(xs), torch.from_numpy(ts))
    assert str(ours.value) == str(theirs.value)


def test_time_affine_bad_input_same_message() -> None:
    W, b = np.zeros((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match=r"^xs: expected shape \(N, T, 3\)") as ours:
        TimeAffine(W, b).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError) as theirs:
        ttl.TimeAffine(torch.from_numpy(W), torch.from_numpy(b))(torch.zeros(2, 3,
                                                                             dtype=torch.float64))
    assert str(ours.value) == str(theirs.value)


# ---- clip_grads ---------------------------------------------------------------------------

@given(case=S.clip_grads_case(np.float64, nonfinite=False))
def test_clip_grads_in_place_like_clip_grad_norm_(case: Case) -> None:
    grads = {str(i): g.copy() for i, g in enumerate(case.args)}
    norm = so.clip_grads(grads, case.kwargs["max_norm"])
    expected = np.sqrt(sum(np.sum(g ** 2) for g in case.args))
    assert_close(np.float64(norm), np.float64(expected), msg="the norm before clipping")
    after = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    if expected > case.kwargs["max_norm"]:
        assert after <= case.kwargs["max_norm"] * (1 + 1e-9)
        scale = case.kwargs["max_norm"] / (expected + 1e-6)     # torch's factor
        for k, g in grads.items():                          # one common factor: direction kept
            assert_close(g, case.args[int(k)] * scale, msg=f"grads[{k!r}] scaled")
    else:
        for k, g in grads.items():                          # multiplied by exactly 1
            np.testing.assert_array_equal(g, case.args[int(k)])


def test_clip_grads_non_finite_norm_like_torch() -> None:
    grads = {"a": np.array([np.inf, 1.0]), "b": np.array([2.0])}
    tgrads = {k: torch.from_numpy(v.copy()) for k, v in grads.items()}
    with np.errstate(invalid="ignore"):
        norm = so.clip_grads(grads, 1.0)
    tnorm = to.clip_grads(tgrads, 1.0)
    assert np.isinf(norm) and torch.isinf(tnorm)
    for k in grads:
        np.testing.assert_array_equal(np.isnan(grads[k]), torch.isnan(tgrads[k]).numpy())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_clip_grads_bad_max_norm(bad: float) -> None:
    for clip, g in ((so.clip_grads, np.ones(2)), (to.clip_grads, torch.ones(2))):
        with pytest.raises(ValueError, match=r"^max_norm: expected a positive"):
            clip({"a": g}, bad)


def test_time_affine_native_on_4d_is_not_a_silent_flatten() -> None:
    """torch's F.linear takes any leading axes; ours wants (N, T, D) and says so."""
    assert F.linear(torch.zeros(1, 2, 3, 4), torch.zeros(5, 4)).shape == (1, 2, 3, 5)
    with pytest.raises(ValueError, match=r"^xs: "):
        TimeAffine(np.zeros((4, 5)), np.zeros(5)).forward(np.zeros((1, 2, 3, 4)))
