"""Data preparation for the digits CNNs (issue 13): bilinear resizing against torch's interpolate,
shifts drawn by (seed, epoch), the same shifted batches on both sides, the tie-break on validation
loss, and all of it in --resume."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.training as sst
import torchref.testing.strategies as S
from parity_tests.script_runs import assert_usage_error, main_in_process
from parity_tests.test_train_loop import QUICK, newest_state
from scratch import augment as sa
from torchref import training as tt
from torchref.lockstep import Run
from torchref.tolerance import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")

images = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 7), st.integers(1, 7))


# ----------------------------------------------------------------------------- resizing

@given(S.dtypes.flatmap(lambda d: S.arrays(d, images, 1.0)), st.integers(1, 20))
@example(np.arange(64, dtype=np.float64).reshape(1, 1, 8, 8), 28)
@example(np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8), 3)      # downsampling
def test_upsample_bilinear_equals_torch_interpolate(x: np.ndarray, size: int) -> None:
    got = sa.upsample_bilinear(x, size)
    want = F.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear",
                         align_corners=False).numpy()
    assert got.shape == (*x.shape[:2], size, size) and got.dtype == x.dtype
    assert_close(got, want, msg=f"{x.shape} -> {size}")


def test_upsample_keeps_constants_and_the_size_it_has() -> None:
    x = np.arange(2 * 64, dtype=np.float64).reshape(2, 1, 8, 8)
    np.testing.assert_array_equal(sa.upsample_bilinear(x, 8), x)
    np.testing.assert_array_equal(sa.upsample_bilinear(np.full((1, 1, 8, 8), 0.25), 16),
                                  np.full((1, 1, 16, 16), 0.25))
    up = sa.upsample_bilinear(x, 16)     # each output pair straddles one input pixel
    assert up[0, 0, 0, 0] == x[0, 0, 0, 0] and up[0, 0, 15, 15] == x[0, 0, 7, 7]
    np.testing.assert_allclose(up[0, 0, 0, 1], 0.75 * x[0, 0, 0, 0] + 0.25 * x[0, 0, 0, 1])
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="image_size: expected a positive"):
            sa.upsample_bilinear(x, bad)
    with pytest.raises(ValueError, match=r"x: expected images \(N, C, H, W\)"):
        sa.upsample_bilinear(x[0], 16)


# ----------------------------------------------------------------------------- shifts

def test_epoch_shifts_are_a_function_of_seed_and_epoch() -> None:
    a = sa.epoch_shifts(500, 2, seed=3, epoch=4)
    assert a.shape == (500, 2) and a.min() == -2 and a.max() == 2
    assert set(np.unique(a)) == {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(sa.epoch_shifts(500, 2, seed=3, epoch=4), a)
    assert not np.array_equal(sa.epoch_shifts(500, 2, seed=3, epoch=5), a)
    assert not np.array_equal(sa.epoch_shifts(500, 2, seed=4, epoch=4), a)
    assert not np.any(sa.epoch_shifts(50, 0, seed=3, epoch=4))
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="augment: expected a non-negative"):
            sa.epoch_shifts(5, bad, seed=0, epoch=0)


@given(S.arrays(np.float64, images, 1.0), st.data())
def test_shift_images_moves_each_image_and_fills_zeros(x: np.ndarray, data) -> None:
    h, w = x.shape[2:]
    k = min(h, w) - 1
    pairs = data.draw(st.lists(st.tuples(st.integers(-k, k), st.integers(-k, k)),
                               min_size=len(x), max_size=len(x)))
    shifts = np.array(pairs, dtype=np.int64).reshape(len(x), 2)
    got = sa.shift_images(x, shifts)
    for j, (dy, dx) in enumerate(shifts):                       # pixel by pixel
        for y in range(h):
            for xx in range(w):
                inside = 0 <= y - dy < h and 0 <= xx - dx < w
                want = x[j, :, y - dy, xx - dx] if inside else 0.0
                np.testing.assert_array_equal(got[j, :, y, xx], want)


def test_shift_images_refuses_shifts_out_of_view() -> None:
    x = np.ones((2, 1, 4, 4))
    with pytest.raises(ValueError, match="augment: a shift of 4 pixels moves a 4x4 image"):
        sa.shift_images(x, np.array([[0, 4], [0, 0]]))
    with pytest.raises(ValueError, match=r"shifts: expected \(2, 2\) shifts"):
        sa.shift_images(x, np.zeros((3, 2), dtype=np.int64))


# square images from 2x2 (1x1: torch's affine_grid warns, its unit-size grids differ)
square = st.integers(2, 7).flatmap(lambda h: st.tuples(st.integers(1, 3), st.integers(1, 2),
                                                      st.just(h), st.just(h)))


@given(S.dtypes.flatmap(lambda d: S.arrays(d, square, 1.0)), st.data())
@example(np.arange(64, dtype=np.float64).reshape(1, 1, 8, 8), None)     # a quarter turn
def test_rotate_scale_equals_torch_affine_grid_and_grid_sample(x: np.ndarray, data) -> None:
    n = len(x)
    if data is None:
        angles, factors = np.array([90.0]), np.array([1.0])
    else:
        angles = np.array(data.draw(st.lists(st.floats(-180, 180), min_size=n, max_size=n)))
        factors = np.array(data.draw(st.lists(st.floats(0.5, 1.5), min_size=n, max_size=n)))
    got = sa.rotate_scale(x, angles, factors)
    a, f = np.deg2rad(angles), factors          # torch's theta maps output to source, (x, y)
    theta = np.stack([np.stack([np.cos(a) / f, -np.sin(a) / f, 0 * a], 1),
                      np.stack([np.sin(a) / f, np.cos(a) / f, 0 * a], 1)], 1)
    xt = torch.from_numpy(x).double()
    grid = F.affine_grid(torch.from_numpy(theta), list(xt.shape), align_corners=True)
    want = F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    assert got.shape == x.shape and got.dtype == x.dtype
    assert_close(got, want.numpy().astype(x.dtype), msg=f"{x.shape} {angles} {factors}")
    if data is None:                  # +90 degrees: a quarter turn counter-clockwise, as shown
        np.testing.assert_allclose(got[0, 0], np.rot90(x[0, 0], k=1), atol=1e-12)


def test_epoch_affine_draws_by_seed_and_epoch_and_identity_keeps_images() -> None:
    angles, factors = sa.epoch_affine(400, 10.0, 0.1, seed=2, epoch=3)
    assert angles.shape == factors.shape == (400,)
    assert -10 <= angles.min() < -9 and 9 < angles.max() <= 10
    assert 0.9 <= factors.min() < 0.91 and 1.09 < factors.max() <= 1.1
    again = sa.epoch_affine(400, 10.0, 0.1, seed=2, epoch=3)
    np.testing.assert_array_equal(again[0], angles)
    assert not np.array_equal(sa.epoch_affine(400, 10.0, 0.1, seed=2, epoch=4)[0], angles)
    x = np.arange(2 * 49, dtype=np.float32).reshape(2, 1, 7, 7)
    np.testing.assert_array_equal(sa.rotate_scale(x, np.zeros(2), np.ones(2)), x)
    jitter = sa.epoch_jitter(10, seed=2, epoch=3, shift=1, degrees=10.0, scale=0.1)
    idx = np.array([4, 1])
    np.testing.assert_array_equal(  # turned and scaled first, then shifted
        sa.jitter_batch(np.repeat(x, 5, axis=0), jitter, idx),
        sa.shift_images(sa.rotate_scale(np.repeat(x, 5, axis=0)[idx], jitter["angles"][idx],
                                        jitter["factors"][idx]), jitter["shifts"][idx]))
    assert sa.epoch_jitter(10, seed=2, epoch=3) is None
    for bad, name in (((200.0, 0.0), "augment_rotate"), ((0.0, 1.0), "augment_scale")):
        with pytest.raises(ValueError, match=name):
            sa.epoch_affine(5, *bad, seed=0, epoch=0)


def test_both_sides_train_on_the_same_shifted_batches(monkeypatch) -> None:
    seen: dict[str, list[np.ndarray]] = {"scratch": [], "torch": []}
    s_step, t_step = sst.Trainer.step, tt.TorchTrainer.step

    def spy_s(self, x, t):
        seen["scratch"].append(x.copy())
        return s_step(self, x, t)

    def spy_t(self, x, t, n_global=None):
        seen["torch"].append(x.cpu().numpy().copy())
        return t_step(self, x, t, n_global)

    monkeypatch.setattr(sst.Trainer, "step", spy_s)
    monkeypatch.setattr(tt.TorchTrainer, "step", spy_t)
    run = Run(replace(QUICK, epochs=2, dtype="float64", augment=1, image_size=10, lr=0.5,
                      augment_rotate=15.0, augment_scale=0.1))
    run.run()
    assert run.x.shape[1:] == run.x_test.shape[1:] == (1, 10, 10)
    assert len(seen["scratch"]) == len(seen["torch"]) == 14
    changed = 0
    for step, (a, b) in enumerate(zip(seen["scratch"], seen["torch"], strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"step {step}")
        epoch, i = divmod(step, 7)
        idx = sst.epoch_batches(len(run.x), 200, QUICK.seed, epoch)[i]
        angles, factors = sa.epoch_affine(len(run.x), 15.0, 0.1, QUICK.seed, epoch)
        shifts = sa.epoch_shifts(len(run.x), 1, QUICK.seed, epoch)[idx]
        turned = sa.rotate_scale(run.x[idx], angles[idx], factors[idx])
        np.testing.assert_array_equal(a, sa.shift_images(turned, shifts))
        changed += not np.array_equal(a, run.x[idx])
    assert changed == 14
    for k, v in run.trainers["scratch"].params_numpy().items():
        assert_close(run.trainers["torch"].params_numpy()[k], v, msg=k)


# ----------------------------------------------------------------------------- tie-break

def test_improves_breaks_ties_on_the_lower_validation_loss() -> None:
    best = {"epoch": 3, "val_acc": 0.9, "val_loss": 0.3}
    assert sst.improves(0.9, 0.2, best) and not sst.improves(0.9, 0.3, best)
    assert not sst.improves(0.9, 0.4, best) and sst.improves(0.91, 0.9, best)
    assert not sst.improves(0.89, 0.01, best)
    assert not sst.improves(0.9, 0.2, best, "first") and sst.improves(0.91, 0.9, best, "first")
    assert sst.improves(0.1, 5.0, {"epoch": None, "val_acc": None, "val_loss": None})
    with pytest.raises(ValueError, match="tie_break: expected one of"):
        sst.improves(0.9, 0.2, best, "last")


# lr 0.05 over 10 epochs: validation accuracy ties at its best (checked below), so the rule acts
TIES = replace(QUICK, impl="scratch", epochs=10, lr=0.05, optimizer="adam", dtype="float64")


def test_the_best_epoch_is_the_lowest_val_loss_among_the_best_val_acc(tmp_path) -> None:
    result = Run(replace(TIES, out=str(tmp_path / "loss"))).run()
    rows = result["history"]
    top = max(r["val_acc"] for r in rows)
    tied = [r for r in rows if r["val_acc"] == top]
    assert len(tied) > 1 and tied[0] != min(tied, key=lambda r: r["val_loss"])   # a real tie
    want = min(tied, key=lambda r: r["val_loss"])
    assert result["best"] == {"epoch": want["epoch"], "val_acc": top,
                              "val_loss": want["val_loss"]}
    arrays = newest_state(tmp_path / "loss")["best.npz"]           # best.npz: that epoch's
    first = Run(replace(TIES, tie_break="first", out=str(tmp_path / "first"))).run()
    assert first["best"]["epoch"] == tied[0]["epoch"]
    assert first["history"] == [{**r, "train_time_s": f["train_time_s"]}
                                for r, f in zip(rows, first["history"], strict=True)]
    other = newest_state(tmp_path / "first")["best.npz"]
    assert not np.array_equal(arrays["param/W1"], other["param/W1"])
    assert result["test"]["scratch"]["epoch"] == want["epoch"]


@pytest.mark.parametrize(("flags", "stop_after"), [
    ({"augment": 1, "image_size": 10, "lr": 0.5, "optimizer": "sgd"}, 11),
    ({"augment": 2, "impl": "scratch", "early_stop_patience": 4, "augment_rotate": 10.0,
      "augment_scale": 0.1}, 40),
    ({}, 65),               # TIES itself: epoch 10 wins its tie with 9 after the interruption
])
def test_resume_is_bit_identical_with_shifts_and_the_tie_break(tmp_path, flags: dict,
                                                               stop_after: int) -> None:
    cfg = replace(TIES, impl="both", **flags) if "impl" not in flags else replace(TIES, **flags)
    whole = Run(replace(cfg, out=str(tmp_path / "whole"))).run()
    assert Run(replace(cfg, out=str(tmp_path / "part"), stop_after=stop_after)).run()["stopped"]
    result = Run(replace(cfg, out=str(tmp_path / "part"), resume=True)).run()

    def timeless(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "train_time_s"} for r in history]
    assert timeless(result["history"]) == timeless(whole["history"])
    assert result["test"] == whole["test"] and result["best"] == whole["best"]
    a, b = newest_state(tmp_path / "whole"), newest_state(tmp_path / "part")
    for side in ("scratch", "torch", "best.npz"):
        for k, v in a.get(side, {}).items():
            np.testing.assert_array_equal(np.asarray(b[side][k]), np.asarray(v),
                                          err_msg=f"{side} {k}")


def test_a_checkpoint_from_before_these_options_resumes_with_their_old_values(tmp_path) -> None:
    run = Run(replace(QUICK, out=str(tmp_path), epochs=2, tie_break="first"))
    meta = {**run.meta(), "config": {k: v for k, v in run.meta()["config"].items()
                                     if k not in ("image_size", "augment", "augment_rotate",
                                                  "augment_scale", "tie_break")}}
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    assert run.read_meta(path)["config"]["tie_break"] == "first"
    with pytest.raises(ValueError, match="tie_break"):          # today's default differs
        Run(replace(QUICK, out=str(tmp_path), epochs=2)).read_meta(path)


# ----------------------------------------------------------------------------- the script

@pytest.mark.parametrize(("args", "words"), [
    (["--image-size", "0"], "--image-size: expected a positive number of pixels, got 0"),
    (["--model", "cnn", "--image-size", "5"], "--image-size: 5 is too small for --model cnn"),
    (["--augment", "-1"], "--augment: expected a non-negative number of pixels, got -1"),
    (["--augment", "8"], "--augment: a shift of 8 pixels moves a 8x8 image out of view"),
    (["--tie-break", "last"], "--tie-break: invalid choice"),
    (["--augment-rotate", "-5"], "--augment-rotate: expected degrees in [0, 180], got -5.0"),
    (["--augment-scale", "1"], "--augment-scale: expected a fraction in [0, 1), got 1.0"),
])
def test_bad_data_options_are_usage_errors(capsys, args: list[str], words: str) -> None:
    code, _, err = main_in_process(args, capsys)
    assert_usage_error(code, err, words)


def test_help_explains_the_data_options(capsys) -> None:
    code, out, _ = main_in_process(["--help"], capsys)
    out = " ".join(out.split())
    assert code == 0
    for words in ("--image-size PIXELS", "bilinear", "--augment PIXELS", "(seed, epoch)",
                  "--augment-rotate DEGREES", "--augment-scale F",
                  "--tie-break {val-loss,first}", "lower validation loss"):
        assert words in out, words
