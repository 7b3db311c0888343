"""Every script checks its output path before any work: an --out (or --json) that is a file, or
under a file, is a usage error (exit 2) naming the argument, not a traceback after the run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from scratch.runlock import usable_file, usable_folder
from torchref import report

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module             # bench.py's dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def usage_error(main, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run ``main(argv)``, expect exit 2 and return stderr."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


# cheap settings, so that a script which does not check its path first fails only after a
# short run (the test is red, not slow, before the fix)
CASES = {
    "report": (lambda: report.main, ["--only", "relu", "--examples", "1", "--no-progress"]),
    "distill": (lambda: load("distill").main,
                ["--seeds", "0", "--epochs", "1", "--teacher-epochs", "1", "--train-size", "30",
                 "--student-hidden", "4", "--teacher-hidden", "4"]),
    "compare_optimizers": (lambda: load("compare_optimizers").main,
                           ["--steps", "1", "--hidden", "4", "--no-progress"]),
    "train_lm": (lambda: load("train_lm").main,
                 ["--epochs", "1", "--hidden", "4", "--embed", "4", "--sample-length", "1",
                  "--no-progress"]),
}


@pytest.mark.parametrize("under", [False, True], ids=["is-a-file", "under-a-file"])
@pytest.mark.parametrize("script", sorted(CASES))
def test_out_that_is_a_file_is_a_usage_error(script: str, under: bool, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    out = blocker / "run" if under else blocker
    main, argv = CASES[script]
    err = usage_error(main(), [*argv, "--out", str(out)], capsys)
    assert f"--out: {out} is not a folder ({blocker} is a file)" in err
    assert blocker.read_text() == "keep me"


def test_bench_json_under_a_file_is_a_usage_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    path = blocker / "bench.json"
    err = usage_error(load("bench").main, ["--only", "mlp", "--repeats", "1", "--warmup", "0",
                                           "--json", str(path)], capsys)
    assert f"--json: {blocker} is not a folder ({blocker} is a file)" in err
    err = usage_error(load("bench").main, ["--json", str(tmp_path)], capsys)
    assert f"--json: {tmp_path} is a folder" in err


def test_usable_paths_are_created_and_returned(tmp_path: Path) -> None:
    assert usable_folder(tmp_path / "a" / "b").is_dir()
    assert usable_file(tmp_path / "c" / "x.json") == tmp_path / "c" / "x.json"
    assert (tmp_path / "c").is_dir() and not (tmp_path / "c" / "x.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["--batch-size", "-1"], "--batch-size: expected a positive integer, got -1"),
    (["--lr", "0"], "--lr: expected a positive finite number, got 0.0"),
])
def test_demo_names_the_one_bad_argument(argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture) -> None:
    err = usage_error(load("demo").main, argv, capsys)
    assert message in err
    assert err.count("expected") == 1


def test_train_lm_device_choices_and_missing_cuda(capsys: pytest.CaptureFixture) -> None:
    train_lm = load("train_lm")
    assert "invalid choice: 'gpu'" in usage_error(train_lm.main, ["--device", "gpu"], capsys)
    if not torch.cuda.is_available():
        err = usage_error(train_lm.main, ["--impl", "torch", "--device", "cuda"], capsys)
        assert "--device: 'cuda' was asked for but torch" in err


def test_train_lm_refuses_a_window_longer_than_each_stream(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "text.txt"
    corpus.write_text("the cat sat. " * 20)     # 260 characters: 234 train, 4 streams of 58
    assert load("train_lm").main(["--corpus", str(corpus), "--batch-size", "4", "--bptt", "59",
                                  "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--bptt: 59 characters per window" in err and "has 58;" in err
