"""scripts/compare_optimizers.py: one command, the same batches for every optimizer, JSON + PNG."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from scratch.training import epoch_batches

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("compare_optimizers",
                                                  ROOT / "scripts" / "compare_optimizers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("side", ["scratch", "torch"])
def test_compare_optimizers_writes_curves(side: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn")
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    script = load_script()
    assert script.main(["--steps", "4", "--hidden", "8", "--batch-size", "16",
                        "--side", side, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "optimizers.json").read_text())
    assert set(result["optimizers"]) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                         "adam"}
    first = {run["loss"][0] for run in result["optimizers"].values()}
    assert len(first) == 1                     # same weights, same first batch for all
    assert all(len(run["loss"]) == 4 for run in result["optimizers"].values())
    assert result["optimizers"]["adam"]["hyperparameters"]["lr"] == 0.001
    assert (tmp_path / "optimizers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batches_are_the_shared_epoch_order() -> None:
    script = load_script()
    batches = script.step_batches(10, 4, 5, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4]      # epochs of 10: 4 + 4 + 2
    for got, want in zip(batches, epoch_batches(10, 4, 0, 0) + epoch_batches(10, 4, 0, 1),
                         strict=False):
        np.testing.assert_array_equal(got, want)        # scripts/train.py's order
    whole = script.step_batches(10, 5000, 3, seed=0)      # batch above N: the whole set
    assert [sorted(b.tolist()) for b in whole] == [list(range(10))] * 3


@pytest.mark.parametrize(("args", "words"), [
    (["--steps", "0"], "--steps: expected a positive integer, got 0"),
    (["--batch-size", "-1"], "--batch-size: expected a positive integer, got -1"),
    (["--hidden", "8", "0"], "--hidden: expected positive widths"),
    (["--lr", "nan"], "--lr: expected a positive finite number"),
])
def test_bad_arguments_are_usage_errors(args: list[str], words: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        load_script().parse_args(args)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_help_states_each_default_once(capsys) -> None:
    with pytest.raises(SystemExit):
        load_script().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: 128)" in text
    # one "(default: ...)" for each option but --help and --no-progress
    assert text.count("(default:") == 8
