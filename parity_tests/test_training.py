"""Training: lockstep scratch vs torch, atomic checkpoints, exact resume, AMP, DDP on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import scratch.optim as soptim
import scratch.training as st
import torchref.optim as toptim
import torchref.training as tt
from scratch._atomic import atomic_write, current_umask
from torchref.device import set_threads
from torchref.lockstep import Run, RunConfig, epoch_line
from torchref.tolerance import assert_close

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = sorted(set(soptim.OPTIMIZERS) & set(toptim.OPTIMIZERS))
MODELS = ["mlp", "cnn"]
LRS = {"sgd": 0.1}      # other optimizers: 0.01 (adaptive ones take steps of ~lr)


pytestmark = pytest.mark.usefixtures("one_thread")


def train_script():
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def final_params(run: Run) -> dict[str, dict[str, np.ndarray]]:
    return {impl: {k: v.copy() for k, v in tr.params_numpy().items()}
            for impl, tr in run.trainers.items()}


def test_epoch_batches_partition_and_order() -> None:
    batches = st.epoch_batches(103, 10, seed=1, epoch=2)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))
    again = st.epoch_batches(103, 10, seed=1, epoch=2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    assert not np.array_equal(st.epoch_order(103, 1, 2), st.epoch_order(103, 1, 3))
    with pytest.raises(ValueError, match="batch_size"):
        st.epoch_batches(10, 0, 0, 0)


# ----------------------------------------------------------------------------- lockstep

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_lockstep_float64_agrees_over_hundreds_of_steps(model: str, optimizer: str) -> None:
    """Same weights, same batches: ~270 steps of scratch and torch stay within the float64
    policy, parameter by parameter, and every step's loss agrees."""
    epochs, batch = (3, 16) if model == "mlp" else (1, 8)
    cfg = RunConfig(model=model, impl="both", dtype="float64", epochs=epochs, batch_size=batch,
                    optimizer=optimizer, lr=LRS.get(optimizer, 0.01), seed=5, progress=False)
    run = Run(cfg)
    result = run.run()
    assert len(result["drift"]) >= 180
    params = final_params(run)
    for k, v in params["scratch"].items():
        assert_close(params["torch"][k], v, msg=f"{k} after {len(result['drift'])} steps")
    assert_close(np.array([d["loss_diff"] for d in result["drift"]]),
                 np.zeros(len(result["drift"])), msg="per-step |loss_scratch - loss_torch|")
    by_impl = {r["impl"]: r for r in result["history"][-2:]}
    assert_close(by_impl["torch"]["test_loss"], by_impl["scratch"]["test_loss"])
    assert by_impl["torch"]["test_acc"] == by_impl["scratch"]["test_acc"]
    if model == "mlp" and optimizer == "sgd":   # and it learns: digits at 3 epochs
        assert by_impl["scratch"]["test_acc"] > 0.85


def test_script_outputs_and_help(tmp_path, capsys) -> None:
    script = train_script()
    help_text = script.build_parser().format_help()
    for flag in ("--model", "--impl", "--dataset", "--data-dir", "--device", "--epochs",
                 "--batch-size", "--lr", "--optimizer", "--seed", "--out", "--resume", "--amp",
                 "--compile", "--deterministic"):
        assert flag in help_text
    out = tmp_path / "run"
    script.main(["--epochs", "2", "--batch-size", "200", "--out", str(out)])
    report = json.loads((out / "metrics.json").read_text())
    assert [r["impl"] for r in report["history"]] == ["scratch", "torch"] * 2
    assert report["drift_report"]["steps"] == 16
    assert (out / "metrics.csv").read_text().count("\n") == 5
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "lockstep drift over 16 steps" in text and "after epoch 2: scratch test acc" in text
    mode = 0o666 & ~current_umask()      # atomically written, yet the usual permissions
    for name in ("metrics.json", "metrics.csv", "curves.png"):
        assert (out / name).stat().st_mode & 0o777 == mode, name


@pytest.mark.parametrize(("changes", "words"), [
    ({"impl": "jax"}, "impl: expected one of"), ({"dtype": "float16"}, "dtype: expected"),
    ({"optimizer": "lbfgs"}, "optimizer: expected one of"),
    ({"epochs": 0}, "^epochs: expected a positive integer, got 0$"),
    ({"epochs": -1, "batch_size": 100}, "^epochs: expected a positive integer, got -1$"),
    ({"batch_size": 0}, "^batch_size: expected a positive integer, got 0$"),
    ({"lr": 0.0}, "^lr: expected a positive finite number, got 0.0$"),
    ({"lr": -1.0}, "^lr: expected a positive finite number"),
    ({"lr": float("nan")}, "^lr: expected a positive finite number, got nan$"),
    ({"lr": float("inf")}, "^lr: expected a positive finite number, got inf$"),
    ({"stop_after": -3, "out": "x"}, "^stop_after: expected a non-negative integer, got -3$"),
    ({"checkpoint_every": -1, "out": "x"}, "^checkpoint_every: expected a non-negative"),
    ({"threads": -2}, "^threads: expected a non-negative integer, got -2$"),
    ({"resume": True}, "out: checkpoints"), ({"amp": True}, "amp: lockstep"),
    ({"impl": "scratch", "amp": True}, "^amp: a torch option, but --impl scratch"),
    ({"impl": "scratch", "compile": True}, "^compile: a torch option"),
    ({"impl": "scratch", "deterministic": True}, "^deterministic: a torch option"),
    ({"impl": "scratch", "device": "cuda"}, "^device: --impl scratch runs NumPy on the CPU"),
    ({"model": "lenet"}, "model: expected one of"),
])
def test_bad_settings_are_errors(changes: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Run(replace(RunConfig(progress=False), **changes))


@pytest.mark.parametrize(("args", "words"), [
    (["--epochs", "-1"], "--epochs: expected a positive integer, got -1"),
    (["--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["--lr", "nan"], "--lr: expected a positive finite number, got nan"),
    (["--stop-after", "-3", "--out", "o"], "--stop-after: expected a non-negative integer"),
    (["--impl", "both", "--amp"], "--amp: lockstep"),
    (["--resume"], "--out: checkpoints"),
    (["--dataset", "mnist"], "--data-dir: dataset 'mnist' is read from disk"),
    (["--dataset", "mnist", "--data-dir", "NOWHERE"], "mnist: missing train-images"),
    (["--device", "cuda:99"], "--device: "),
])
def test_script_bad_settings_are_usage_errors(args: list[str], words: str, tmp_path,
                                              capsys) -> None:
    args = [a.replace("NOWHERE", str(tmp_path)) for a in args]
    with pytest.raises(SystemExit) as exc:
        train_script().main(["--impl", "scratch", "--no-progress", *args]
                            if "--impl" not in args and "--device" not in args else args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "usage: " in err and words in err, err
    assert "Traceback" not in err


def test_script_stop_resume_and_summary_lines(tmp_path, capsys) -> None:
    script, out = train_script(), str(tmp_path / "run")
    base = ["--impl", "scratch", "--batch-size", "500", "--out", out, "--no-progress"]
    script.main([*base, "--epochs", "2", "--stop-after", "4"])
    text = capsys.readouterr().out
    assert "stopped after step 4; continue with --resume" in text
    script.main([*base, "--epochs", "2", "--resume"])
    text = capsys.readouterr().out
    assert "resumed from" in text and "at epoch 2, 1 step(s) into it (global step 4)" in text
    assert "after epoch 2: scratch test acc" in text and "epoch 1 " not in text
    with pytest.raises(SystemExit) as exc:        # nothing left to train: say so
        script.main([*base, "--epochs", "1", "--resume"])
    assert exc.value.code == 2
    assert "has already trained 2 epoch(s)" in capsys.readouterr().err
    script.main([*base, "--epochs", "3", "--resume"])      # with progress off: one summary
    assert capsys.readouterr().out.count("\n") == 3   # resumed, summary, wrote


def test_epoch_line_shows_after_epoch_values_and_that_epoch_s_time() -> None:
    history = [{"epoch": e, "impl": "scratch", "train_loss": 9.0, "train_eval_loss": 0.5 / e,
                "train_acc": 0.9, "test_loss": 0.6, "test_acc": 0.8, "train_time_s": 1.5 * e}
               for e in (1, 2)]
    line = epoch_line(history, 1)
    assert line.startswith("epoch 2 ") and "train loss 0.2500" in line and "1.5s" in line
    assert "9.0" not in line and "3.0s" not in line     # not the running mean, not the total


# ----------------------------------------------------------------------------- checkpoints

def test_atomic_write_leaves_old_file_on_failure(tmp_path) -> None:
    path = tmp_path / "f.bin"
    atomic_write(path, lambda tmp: tmp.write_bytes(b"old"))

    def half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    old_mask = os.umask(0o027)
    try:
        atomic_write(path, lambda tmp: tmp.write_bytes(b"new"))
    finally:
        os.umask(old_mask)
    assert path.stat().st_mode & 0o777 == 0o640       # 0o666 less the umask, as open() gives


def test_set_threads_limits_torch_and_checks_its_argument() -> None:
    limiter = set_threads(1)
    assert torch.get_num_threads() == 1
    if limiter is not None:
        limiter.restore_original_limits()
    with pytest.raises(ValueError, match="threads: expected a positive integer, got 0"):
        set_threads(0)


def test_crash_mid_checkpoint_keeps_previous(tmp_path, monkeypatch) -> None:
    cfg = RunConfig(impl="both", epochs=1, batch_size=100, out=str(tmp_path), stop_after=5,
                    progress=False)
    Run(cfg).run()
    folder = tmp_path / "checkpoints"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    run = Run(replace(cfg, resume=True, stop_after=8))
    expected = final_params(run)      # the state just restored from step 5
    for _ in range(3):
        run.train_step(np.arange(100))
    run.global_step = 8
    real_save = torch.save

    def save_half_then_die(obj, f) -> None:
        real_save(obj, f)
        with open(f, "r+b") as fh:        # a torn write: half the file, then the crash
            fh.truncate(os.path.getsize(f) // 2)
        raise KeyboardInterrupt("killed mid-save")
    monkeypatch.setattr(torch, "save", save_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        run.save()
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
    # the new scratch file may exist (written whole); the pointer and old files are intact
    assert after["latest.json"] == before["latest.json"]
    assert all(after[name] == content for name, content in before.items())
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    restored = Run(replace(cfg, resume=True))
    for impl, params in final_params(restored).items():
        for k, v in params.items():
            np.testing.assert_array_equal(v, expected[impl][k])
    assert restored.global_step == 5


# every optimizer interrupted mid-epoch (its state saved and restored); SGD also at an epoch's end
@pytest.mark.parametrize(("optimizer", "stop_after"),
                         [(name, 7) for name in OPTIMIZERS] + [("sgd", 15)])
def test_resume_gives_the_uninterrupted_result(tmp_path, optimizer: str,
                                               stop_after: int) -> None:
    cfg = RunConfig(impl="both", epochs=2, batch_size=100, optimizer=optimizer,
                    lr=LRS.get(optimizer, 0.01), seed=11, progress=False)
    whole = Run(replace(cfg, out=str(tmp_path / "whole")))
    whole_result = whole.run()
    part = Run(replace(cfg, out=str(tmp_path / "part"), stop_after=stop_after))
    assert part.run()["stopped"]
    resumed = Run(replace(cfg, out=str(tmp_path / "part"), resume=True))
    assert resumed.global_step == stop_after
    result = resumed.run()
    for impl, params in final_params(whole).items():
        got = final_params(resumed)[impl]
        for k, v in params.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{impl} {k}")
    strip = [{k: v for k, v in r.items() if k != "train_time_s"} for r in result["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "train_time_s"}
                     for r in whole_result["history"]]
    assert result["drift"] == whole_result["drift"]


def test_resume_refuses_other_settings(tmp_path) -> None:
    cfg = RunConfig(impl="scratch", epochs=1, batch_size=500, out=str(tmp_path), progress=False)
    Run(cfg).run()
    with pytest.raises(ValueError, match=r"settings differ.*'lr': \(0.1, 0.5\)"):
        Run(replace(cfg, resume=True, lr=0.5))
    with pytest.raises(ValueError, match="no checkpoint"):
        Run(replace(cfg, resume=True, out=str(tmp_path / "empty")))


# ----------------------------------------------------------------------------- torch path

def test_amp_step_matches_float32_within_bfloat16(device: torch.device) -> None:
    x = torch.rand(32, 1, 8, 8, device=device)
    t = torch.randint(0, 10, (32,), device=device)
    smodel = st.make_model("mlp", (1, 8, 8), seed=0, dtype=np.float32)
    ref = tt.TorchTrainer(tt.model_from_scratch(smodel, device), "sgd", 0.1)
    amp = tt.TorchTrainer(tt.model_from_scratch(smodel, device), "sgd", 0.1, amp=True)
    with amp.autocast():
        assert amp.model(x).dtype == tt.amp_dtype(device)
    loss_ref, loss_amp = ref.step(x, t), amp.step(x, t)
    assert loss_amp.dtype == torch.float32
    # one rounding of inputs and outputs to the autocast dtype: the policy's bfloat16/float16 row
    mode = "bfloat16" if device.type == "cpu" else "float16"
    assert_close(loss_amp, loss_ref, mode=mode)
    for k, v in ref.model.params.items():
        assert_close(amp.model.params[k], v, mode=mode, msg=k)


def test_deterministic_flag_round_trip() -> None:
    try:
        tt.set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        tt.set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or
                    not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available in this torch build")
def test_ddp_two_cpu_processes_equal_one_process(tmp_path) -> None:
    """torchrun, 2 gloo processes on 127.0.0.1: each takes half of every global batch (45, so
    uneven 23/22 halves); the weights equal a single process's on the same global batches."""
    args = ["--impl", "torch", "--device", "cpu", "--dtype", "float64", "--epochs", "1",
            "--batch-size", "45", "--seed", "3", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), str(ROOT / "scripts" / "train.py"),
           *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single = train_script()
    single.main([*args, "--out", str(tmp_path / "one")])
    reports = {}
    for name in ("ddp", "one"):
        folder = tmp_path / name / "checkpoints"
        files = json.loads((folder / "latest.json").read_text())["files"]
        meta = json.loads((folder / files["meta.json"]).read_text())
        assert meta["world"] == (2 if name == "ddp" else 1)
        reports[name] = meta["history"][0]
        state = torch.load(folder / files["torch.pt"], weights_only=True)
        reports[name + "_state"] = state["model"]
    for k, v in reports["one_state"].items():
        assert_close(reports["ddp_state"][k], v, msg=f"DDP vs single process, {k}")
    for key in ("train_loss", "test_loss"):
        assert_close(reports["ddp"][key], reports["one"][key], msg=key)
    assert reports["ddp"]["test_acc"] == reports["one"]["test_acc"]
