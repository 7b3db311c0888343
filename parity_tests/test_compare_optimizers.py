"""scripts/compare_optimizers.py: one command, the same batches for every optimizer, JSON + PNG."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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


def test_batches_are_shuffled_epochs() -> None:
    idx = load_script().batch_indices(10, 4, 5, seed=0)
    assert idx.shape == (5, 4)
    assert sorted(idx[:2].ravel()) == sorted(set(idx[:2].ravel()))   # no repeat in an epoch
