"""The causal Transformer LM (scratch.lm_transformer / torchref.lm_transformer) and
``scripts/train_lm.py --model transformer``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from parity_tests.test_train_lm import load_script
from scratch.gradient import gradcheck
from scratch.lm_transformer import TransformerLM, causal_mask
from torchref.lm_transformer import TransformerLM as TorchTransformerLM
from torchref.tolerance import assert_close


def test_causal_mask_allows_only_the_past_and_present() -> None:
    mask = causal_mask(4)
    assert mask.dtype == bool and mask[2, 2] and mask[2, 0] and not mask[2, 3]
    assert mask.sum() == 4 * 5 // 2


def test_a_token_does_not_see_the_future() -> None:
    model = TransformerLM(9, 8, 2, 2, 2, context=6, seed=0)
    xs = np.array([[1, 2, 3, 4, 5, 6]])
    changed = xs.copy()
    changed[0, 4:] = [7, 8]                              # only positions 4 and 5 differ
    before, after = model.predict(xs), model.predict(changed)
    np.testing.assert_array_equal(before[:, :4], after[:, :4])
    assert not np.allclose(before[:, 4:], after[:, 4:])


def test_lockstep_training_steps_match_torch(device: torch.device) -> None:
    """Four Adam steps with clipping through the script's own two sides, float64, the same
    initial weights: the losses and the weights after the steps agree within the policy."""
    train_lm = load_script()
    args = train_lm.parse_args(["--model", "transformer", "--embed", "8", "--heads", "2",
                                "--layers", "2", "--ff-expansion", "2", "--bptt", "6",
                                "--dtype", "float64", "--clip", "0.5", "--lr", "0.01",
                                "--device", device.type])
    scratch_side = train_lm.ScratchSide(args, 7)
    torch_side = train_lm.TorchSide(args, 7)
    rng = np.random.default_rng(3)
    for step in range(4):
        xs, ts = rng.integers(0, 7, (3, 6)), rng.integers(0, 7, (3, 6))
        assert_close(torch_side.step(xs, ts), scratch_side.step(xs, ts), msg=f"loss {step}")
    tparams = torch_side.model.params
    for key, value in scratch_side.model.params.items():
        assert_close(tparams[key], value, msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_match_torch_autograd(dtype: type, device: torch.device) -> None:
    rng = np.random.default_rng(0)
    model = TransformerLM(7, 4, 2, 1, 2, context=5, seed=0, dtype=dtype)
    tmodel = TorchTransformerLM.from_scratch(model, device=device)
    xs, ts = rng.integers(0, 7, (2, 5)), rng.integers(0, 7, (2, 5))
    grads = model.gradient(xs, ts)
    loss = tmodel.loss(torch.from_numpy(xs).to(device), torch.from_numpy(ts).to(device))
    loss.backward()
    assert_close(loss, model.last_layer.loss, msg="loss")
    tgrads = tmodel.grads()
    assert set(tgrads) == set(grads)
    for k, g in grads.items():
        assert_close(tgrads[k], g, msg=f"d{k}")


def test_gradient_vs_central_differences() -> None:
    rng = np.random.default_rng(1)
    model = TransformerLM(6, 4, 2, 2, 2, context=4, seed=1)
    xs, ts = rng.integers(0, 6, (2, 4)), rng.integers(0, 6, (2, 4))
    gradcheck(model, (xs, ts)).raise_if_failed()


def test_window_longer_than_the_context_is_an_error() -> None:
    model = TransformerLM(5, 4, 2, 1, 2, context=3, seed=0)
    tmodel = TorchTransformerLM.from_scratch(model)
    with pytest.raises(ValueError, match="xs: expected shape"):
        model.predict(np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="xs: expected shape"):
        tmodel(torch.zeros(1, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="num_heads: expected a divisor"):
        TransformerLM(5, 6, 4)


@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_script_trains_a_transformer(impl: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "text.txt"
    corpus.write_text("the cat sat on the mat. " * 40)
    out = tmp_path / "run"
    assert load_script().main(["--model", "transformer", "--corpus", str(corpus), "--epochs", "2",
                               "--embed", "8", "--heads", "2", "--layers", "1",
                               "--ff-expansion", "2", "--batch-size", "4", "--bptt", "8",
                               "--sample-length", "12", "--out", str(out), "--no-progress",
                               "--impl", impl, "--device", "cpu"]) == 0
    doc = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in doc["history"]] == [1, 2]
    assert doc["history"][1]["train_ppl"] < doc["history"][0]["train_ppl"]
    assert len(doc["last_sample"]) == 1 + 12    # longer than --bptt: the context slides
    assert (out / "perplexity.png").read_bytes()[:4] == b"\x89PNG"
    assert "transformer" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "gru"], "--model: invalid choice"),
    (["--model", "transformer", "--embed", "6", "--heads", "4"],
     "--heads: expected a divisor of --embed 6"),
    (["--model", "transformer", "--heads", "0"], "--heads: expected a positive integer"),
    (["--model", "transformer", "--layers", "3"], "--layers: invalid choice"),
    (["--model", "transformer", "--ff-expansion", "0"],
     "--ff-expansion: expected a positive integer"),
])
def test_script_bad_arguments(argv: list[str], message: str,
                              capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        load_script().main(argv)
    assert message in capsys.readouterr().err
