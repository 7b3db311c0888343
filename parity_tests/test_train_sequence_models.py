"""``scripts/train.py --model lstm|gru|rnn|transformer``: the digits read as 8 rows of 8 pixels,
scratch and torch from the same initial weights, in lockstep (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity_tests.script_runs import main_in_process
from scratch.training import make_model


@pytest.mark.parametrize("model", ["lstm", "gru", "rnn", "transformer"])
def test_train_py_runs_the_sequence_models_in_lockstep(model: str, tmp_path: Path,
                                                       capsys) -> None:
    out = tmp_path / "run"
    code, stdout, err = main_in_process(
        ["--model", model, "--impl", "both", "--epochs", "1", "--stop-after", "6",
         "--batch-size", "50", "--dtype", "float64", "--no-progress", "--out", str(out)], capsys)
    assert code == 0, err
    assert "lockstep drift" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    drift = metrics["drift"]
    assert len(drift) == 6, drift
    assert max(d["param_diff"] for d in drift) < 1e-9, drift[-1]


def test_the_transformer_reads_rows_as_tokens() -> None:
    model = make_model("transformer", (1, 8, 8), seed=0)
    assert (model.seq_len, model.input_dim) == (8, 8)
