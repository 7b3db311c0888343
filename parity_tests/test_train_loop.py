"""The training loop of scripts/train.py (issue 13): validation split, schedules on both sides,
the best checkpoint, early stopping, all of it restored by --resume, and the model options."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import scratch.training as st
from parity_tests.script_runs import assert_usage_error, main_in_process
from scratch import checkpoints as ck
from torchref.lockstep import Run, RunConfig
from torchref.run_report import COLUMNS
from torchref.tolerance import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")

# tiny, fast runs: the digits (1438 training images, 1294 after validation), 7 steps an epoch
QUICK = RunConfig(impl="both", epochs=4, batch_size=200, seed=3, progress=False)


def newest_state(out: Path) -> dict:
    """The last checkpoint set's state: scratch arrays, torch model, meta and best weights."""
    folder = out / "checkpoints"
    files = json.loads((folder / ck.POINTER).read_text())["files"]
    state = {"meta": json.loads((folder / files["meta.json"]).read_text())}
    if "scratch.npz" in files:
        state["scratch"] = st.load_npz(folder / files["scratch.npz"])
    if "torch.pt" in files:
        state["torch"] = torch.load(folder / files["torch.pt"], weights_only=True)["model"]
    if "best.npz" in files:
        state["best.npz"] = st.load_npz(folder / files["best.npz"])
    return state


# ----------------------------------------------------------------------------- validation split

def test_val_split_is_a_seeded_partition_of_the_training_data() -> None:
    train, val = st.val_split(1437, 0.1, seed=4)
    assert len(val) == 144 and len(train) == 1437 - 144
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1437))
    again = st.val_split(1437, 0.1, seed=4)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(st.val_split(1437, 0.1, seed=5)[1], val)
    assert len(st.val_split(10, 0.0, seed=0)[1]) == 0
    for bad in (-0.1, 1.0, 0.01):           # 0.01 of 10 samples: no validation sample
        with pytest.raises(ValueError, match="val_fraction"):
            st.val_split(10, bad, seed=0)


def test_test_set_is_evaluated_once_at_the_end_on_the_best_weights(tmp_path, monkeypatch) -> None:
    calls: list[tuple[str, str]] = []
    evaluate = Run.evaluate

    def spy(self, impl: str, split: str):
        calls.append((impl, split))
        return evaluate(self, impl, split)

    monkeypatch.setattr(Run, "evaluate", spy)
    run = Run(replace(QUICK, lr=0.5, epochs=5, dtype="float64", out=str(tmp_path)))
    result = run.run()
    assert [c for c in calls if c[1] == "test"] == [("scratch", "test"), ("torch", "test")]
    assert calls[-2:] == [("scratch", "test"), ("torch", "test")]
    assert len(run.x_val) == round(0.1 * (len(run.x) + len(run.x_val))) == 144
    rows = [r for r in result["history"] if r["impl"] == "scratch"]
    best = max(rows, key=lambda r: r["val_acc"])          # the first of the best
    assert result["best"]["epoch"] == best["epoch"]
    # independently: the best epoch's weights, as saved in best.npz, on the test set
    arrays = newest_state(tmp_path)["best.npz"]
    model = st.make_model("mlp", run.x.shape[1:], seed=0, dtype=np.float64)
    for k, v in model.params.items():
        v[...] = arrays[f"param/{k}"]
    loss, acc = st.evaluate(model, run.x_test, run.t_test)
    test = result["test"]
    assert test["scratch"]["epoch"] == best["epoch"] and test["scratch"]["weights"] == "best"
    assert (test["scratch"]["test_loss"], test["scratch"]["test_acc"]) == (loss, acc)
    assert_close(test["torch"]["test_loss"], loss)
    assert test["torch"]["test_acc"] == acc


def test_metrics_csv_columns_and_no_validation(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code, _, err = main_in_process(["--epochs", "2", "--batch-size", "500", "--val-fraction",
                                    "0", "--no-progress", "--out", str(out)], capsys)
    assert code == 0, err
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 5
    assert all(r[COLUMNS.index("val_acc")] == "" for r in rows[1:])
    report = json.loads((out / "metrics.json").read_text())
    assert report["test"]["scratch"]["weights"] == "last" and report["best"]["epoch"] is None
    for flags, words in ((["--early-stop-patience", "2"], "--early-stop-patience: needs a "
                          "validation set"),
                         (["--scheduler", "plateau"], "--scheduler: needs a validation set")):
        code, _, err = main_in_process(["--val-fraction", "0", *flags], capsys)
        assert_usage_error(code, err, words)


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize(("optimizer", "lr", "flags"), [
    ("sgd", 0.5, {"scheduler": "step", "step_size": 2, "gamma": 0.5}),
    ("adam", 0.01, {"scheduler": "cosine", "t_max": 3, "eta_min": 0.001}),
    ("rmsprop", 0.01, {"scheduler": "plateau", "plateau_factor": 0.5, "plateau_patience": 0,
                       "plateau_cooldown": 1, "min_lr": 0.004}),
])
def test_schedules_step_both_sides_like_torch(optimizer: str, lr: float, flags: dict) -> None:
    run = Run(replace(QUICK, optimizer=optimizer, lr=lr, epochs=6, dtype="float64", **flags))
    result = run.run()
    lrs = {impl: [r["lr"] for r in result["history"] if r["impl"] == impl]
           for impl in ("scratch", "torch")}
    assert lrs["scratch"] == lrs["torch"]
    # torch's own scheduler, stepped on the recorded validation losses, gives the same lrs
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    cls = {"step": torch.optim.lr_scheduler.StepLR,
           "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
           "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau}[flags["scheduler"]]
    kwargs = {"step": {"step_size": flags.get("step_size"), "gamma": flags.get("gamma")},
              "cosine": {"T_max": flags.get("t_max"), "eta_min": flags.get("eta_min")},
              "plateau": {"factor": flags.get("plateau_factor"),
                          "patience": flags.get("plateau_patience"),
                          "cooldown": flags.get("plateau_cooldown"),
                          "min_lr": flags.get("min_lr")}}[flags["scheduler"]]
    sched = cls(opt, **kwargs)
    expected = []
    for r in (r for r in result["history"] if r["impl"] == "scratch"):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(r["val_loss"]) if flags["scheduler"] == "plateau" else sched.step()
    assert lrs["scratch"] == expected
    assert len(set(expected)) > 1                       # the schedule did change the lr
    for k, v in run.trainers["scratch"].params_numpy().items():
        assert_close(run.trainers["torch"].params_numpy()[k], v, msg=k)


def test_momentum_under_a_schedule_is_refused_in_lockstep(capsys) -> None:
    code, _, err = main_in_process(["--optimizer", "momentum", "--scheduler", "step"], capsys)
    assert_usage_error(code, err, "--scheduler: the course's momentum keeps lr inside")
    Run(replace(QUICK, impl="scratch", optimizer="momentum", scheduler="step", epochs=1))


# ----------------------------------------------------------------------------- best, early stop

def test_best_weights_survive_later_saves_and_are_verified(tmp_path) -> None:
    folder = tmp_path
    run = "r1"
    first = ck.save_checkpoint(folder, "a", {"meta.json": lambda p: p.write_text("1"),
                                             "best.npz": lambda p: p.write_bytes(b"best")},
                               run, carry=("best.npz",))
    for tag in ("b", "c", "d"):      # three more sets: the first set is gone, its best is not
        ck.save_checkpoint(folder, tag, {"meta.json": lambda p, tag=tag: p.write_text(tag)},
                           run, carry=("best.npz",))
    pointer = ck.read_pointer(folder)
    assert pointer["files"]["best.npz"] == first["best.npz"]
    assert (folder / first["best.npz"]).read_bytes() == b"best"
    assert not (folder / first["meta.json"]).exists()
    read = {"meta.json": Path.read_text, "best.npz": Path.read_bytes}
    assert ck.load_checkpoint(folder, read).values["best.npz"] == b"best"
    (folder / first["best.npz"]).write_bytes(b"bent")     # damaged: every set naming it fails
    with pytest.raises(ck.CheckpointError, match="SHA-256"):
        ck.load_checkpoint(folder, read)


def test_early_stopping_stops_after_patience_epochs_without_a_better_val_acc() -> None:
    cfg = replace(QUICK, impl="scratch", lr=2.0, epochs=12, early_stop_patience=2)
    result = Run(cfg).run()
    accs = [r["val_acc"] for r in result["history"]]
    best, bad = -1.0, 0
    stop = None
    for e, acc in enumerate(accs, start=1):      # the rule, recomputed from the records
        best, bad = (acc, 0) if acc > best else (best, bad + 1)
        if bad >= 2:
            stop = e
            break
    assert result["early_stopped"] and stop is not None and len(accs) == stop < cfg.epochs


# resume == uninterrupted: final weights (last set), best weights, records, test results
@pytest.mark.parametrize(("flags", "stop_after"), [
    ({"scheduler": "plateau", "plateau_patience": 0, "optimizer": "adam", "lr": 0.02,
      "early_stop_patience": 3}, 10),
    ({"scheduler": "step", "step_size": 1, "gamma": 0.7, "lr": 0.5, "batchnorm": True}, 14),
    ({"scheduler": "cosine", "t_max": 2, "lr": 0.5, "impl": "scratch"}, 9),
    ({"scheduler": "cosine", "lr": 0.5, "impl": "torch", "weight_decay": 0.01}, 17),
    ({"model": "simplecnn", "batchnorm": True, "dropout": 0.2, "lr": 0.1, "impl": "scratch",
      "early_stop_patience": 2}, 12),
])
def test_resume_is_bit_identical_with_schedule_best_and_patience(tmp_path, flags: dict,
                                                                 stop_after: int) -> None:
    cfg = replace(QUICK, epochs=5, **flags)
    whole = Run(replace(cfg, out=str(tmp_path / "whole"))).run()
    assert Run(replace(cfg, out=str(tmp_path / "part"), stop_after=stop_after)).run()["stopped"]
    resumed = Run(replace(cfg, out=str(tmp_path / "part"), resume=True))
    assert resumed.global_step == stop_after
    result = resumed.run()

    def timeless(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "train_time_s"} for r in history]
    assert timeless(result["history"]) == timeless(whole["history"])
    assert result["test"] == whole["test"] and result["best"] == whole["best"]
    assert result["early_stopped"] == whole["early_stopped"]
    a, b = newest_state(tmp_path / "whole"), newest_state(tmp_path / "part")
    for side in ("scratch", "torch", "best.npz"):
        for k, v in a.get(side, {}).items():
            np.testing.assert_array_equal(np.asarray(b[side][k]), np.asarray(v),
                                          err_msg=f"{side} {k}")
    assert a["meta"]["schedulers"] == b["meta"]["schedulers"]


# ----------------------------------------------------------------------------- model options

@pytest.mark.parametrize(("args", "words"), [
    (["--model", "lstm", "--dropout", "0.2"], "--dropout: the lstm model has no dropout"),
    (["--model", "cnn", "--batchnorm"], "--batchnorm: the cnn model has no batchnorm"),
    (["--model", "gru", "--weight-decay", "0.1"], "--weight-decay: the gru model has no"),
    (["--model", "cnn", "--dropout", "0.3", "--impl", "torch"], "fixed at 0.25 and 0.5"),
    (["--dropout", "0.5"], "--dropout: scratch and torch draw different dropout masks"),
    (["--model", "cnn", "--hidden", "10", "20"], "--hidden: only the mlp takes several"),
    (["--hidden", "0"], "--hidden: expected positive widths"),
    (["--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
])
def test_model_options_a_model_lacks_are_usage_errors(capsys, args: list[str],
                                                      words: str) -> None:
    code, _, err = main_in_process(args, capsys)
    assert_usage_error(code, err, words)


def test_help_names_the_models_and_the_loop_options(capsys) -> None:
    code, out, _ = main_in_process(["--help"], capsys)
    out = " ".join(out.split())
    assert code == 0 and "cnn: SimpleConvNet" not in out
    assert "cnn: the reference text's CNN" in out and "simplecnn" in out
    for flag in ("--hidden", "--dropout", "--batchnorm", "--weight-decay", "--val-fraction",
                 "--scheduler", "--step-size", "--gamma", "--t-max", "--eta-min",
                 "--plateau-factor", "--plateau-patience", "--plateau-cooldown", "--min-lr",
                 "--early-stop-patience"):
        assert flag in out, flag


@pytest.mark.parametrize("model", ["lstm", "gru", "rnn"])
def test_sequence_models_train_in_lockstep(model: str) -> None:
    run = Run(replace(QUICK, model=model, epochs=1, dtype="float64", lr=0.1, hidden=[16]))
    result = run.run()
    assert len(result["drift"]) == 7
    for k, v in run.trainers["scratch"].params_numpy().items():
        assert_close(run.trainers["torch"].params_numpy()[k], v, msg=f"{model} {k}")
    assert result["test"]["scratch"]["test_acc"] == result["test"]["torch"]["test_acc"]


def test_options_reach_both_sides(tmp_path) -> None:
    """--hidden, --batchnorm and --weight-decay build the same model on both sides, which then
    agree; the weight decay changes the result; dropout trains on one side."""
    cfg = replace(QUICK, epochs=2, dtype="float64", hidden=[32, 16], batchnorm=True)
    plain, decayed = Run(cfg), Run(replace(cfg, weight_decay=0.05))
    assert plain.trainers["scratch"].model.sizes == [64, 32, 16, 10]
    for run in (plain, decayed):
        run.run()
        for k, v in run.trainers["scratch"].params_numpy().items():
            assert_close(run.trainers["torch"].params_numpy()[k], v, msg=k)
    assert not np.allclose(plain.trainers["scratch"].params_numpy()["W1"],
                           decayed.trainers["scratch"].params_numpy()["W1"])
    for impl in ("scratch", "torch"):
        result = Run(replace(QUICK, impl=impl, epochs=1, model="deepcnn", dropout=0.3)).run()
        assert 0 <= result["test"][impl]["test_acc"] <= 1
