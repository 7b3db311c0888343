"""The character-level LSTM language model (scratch.lm / torchref.lm) and scripts/train_lm.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scratch.gradient import gradcheck
from scratch.lm import LSTMLM
from torchref.lm import LSTMLM as TorchLSTMLM
from torchref.tolerance import assert_close

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_lm.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_lm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_windows_of_truncated_bptt_match_torch(dtype: type, device: torch.device) -> None:
    rng = np.random.default_rng(0)
    model = LSTMLM(7, 3, 5, seed=0, dtype=dtype)
    tmodel = TorchLSTMLM.from_scratch(model, device=device)
    for _ in range(2):                                   # the state carries into window 2
        xs, ts = rng.integers(0, 7, (3, 6)), rng.integers(0, 7, (3, 6))
        grads = model.gradient(xs, ts)
        tmodel.zero_grad()
        loss = tmodel.loss(torch.from_numpy(xs).to(device), torch.from_numpy(ts).to(device))
        loss.backward()
        assert_close(loss, model.last_layer.loss, msg="loss")
        tgrads = {"embed_W": tmodel.embed.dW, "Wx": tmodel.lstm.dWx, "Wh": tmodel.lstm.dWh,
                  "b": tmodel.lstm.db, "W": tmodel.affine.dW, "b_out": tmodel.affine.db}
        for k, g in grads.items():
            assert_close(tgrads[k], g, msg=f"d{k}")


def test_gradient_vs_central_differences() -> None:
    rng = np.random.default_rng(1)
    model = LSTMLM(6, 3, 4, seed=1)
    xs, ts = rng.integers(0, 6, (2, 5)), rng.integers(0, 6, (2, 5))

    class Stateless:                                     # gradcheck's model form, state reset
        params = model.params

        def loss(self, xs, ts):
            model.reset_state()
            return model.loss(xs, ts)

        def gradient(self, xs, ts):
            model.reset_state()
            return model.gradient(xs, ts)
    gradcheck(Stateless(), (xs, ts)).raise_if_failed()


def test_script_trains_samples_and_writes_its_files(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "text.txt"
    corpus.write_text("the cat sat on the mat. " * 40)
    out = tmp_path / "run"
    train_lm = load_script()
    assert train_lm.main(["--corpus", str(corpus), "--epochs", "2", "--hidden", "8",
                          "--embed", "4", "--batch-size", "4", "--bptt", "8",
                          "--sample-length", "10", "--out", str(out), "--no-progress",
                          "--impl", "scratch"]) == 0
    doc = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in doc["history"]] == [1, 2]
    assert doc["history"][1]["train_ppl"] < doc["history"][0]["train_ppl"]
    assert len(doc["last_sample"]) == 1 + 10    # no "T" in the text: starts from its first char
    assert (out / "perplexity.png").read_bytes()[:4] == b"\x89PNG"
    assert "validation" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--lr", "nan"], "--lr: expected a positive finite number"),
    (["--clip", "0"], "--clip: expected a positive finite number"),
    (["--bptt", "0"], "--bptt: expected a positive integer"),
    (["--impl", "scratch", "--device", "cuda"], "--device: the scratch implementation runs"),
])
def test_script_bad_arguments(argv: list[str], message: str,
                              capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        load_script().main(argv)
    assert message in capsys.readouterr().err
