"""The sequence classifier (LSTM, GRU, RNN cells): gradients three ways, conversion, lockstep.

The digits (8x8, embedded) are read as 8 rows of 8 pixels.  Logits, loss and every
gradient against the torch mirror on every device and dtype are the components
table's ``LSTMClassifier(...)`` rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
import torchref.optim as to
from parity_tests.model_checks import assert_same_params
from scratch.data import load_digits
from scratch.gradient import gradcheck
from scratch.models_seq import LSTMClassifier
from scratch.training import make_sequence_model
from torchref.parity import Case
from torchref.testing import strategies as S
from torchref.training import model_from_scratch

CELLS = ("lstm", "gru", "rnn")


@pytest.mark.parametrize("cell", CELLS)
def test_backprop_vs_central_differences(cell: str) -> None:
    @given(case=S.lstm_classifier_case(np.float64, cell=cell, nonfinite=False))
    def check(case: Case) -> None:
        kwargs, seed = case.init
        model = LSTMClassifier(**kwargs, seed=seed)
        gradcheck(model, case.args).raise_if_failed()
    check()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_conversion_round_trip_is_exact(cell: str, dtype: type, device: torch.device) -> None:
    model = LSTMClassifier(8, 5, 10, cell=cell, seed=0, dtype=dtype)
    tmodel = model_from_scratch(model, device=device)       # what scripts/train.py calls
    assert isinstance(tmodel, tm.LSTMClassifier) and sm.LSTMClassifier is LSTMClassifier
    back = tmodel.to_scratch()
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)


@pytest.mark.parametrize(("cell", "optimizer", "dtype"), [
    ("lstm", "sgd", np.float32), ("lstm", "sgd", np.float64), ("lstm", "adam", np.float64),
    ("gru", "sgd", np.float64), ("rnn", "momentum", np.float64)])
def test_fifty_steps_in_lockstep_on_the_digits(cell: str, optimizer: str, dtype: type,
                                               device: torch.device, one_thread: None) -> None:
    """50 minibatch steps from the same initial weights end with the same weights.

    Adam runs in float64 with eps = 1e-3 (``torchref.tolerance``: adaptive steps amplify
    rounding by lr / eps); SGD also in float32."""
    (x, t), _ = load_digits()
    x, t = x[:500].astype(dtype), t[:500]
    model = make_sequence_model(cell, (1, 8, 8), seed=0, dtype=dtype, hidden=16)
    tmodel = tm.LSTMClassifier.from_scratch(model, device=device)
    kwargs = {"lr": 0.01, "eps": 1e-3} if optimizer == "adam" else {"lr": 0.1}
    opt = so.OPTIMIZERS[optimizer](**kwargs)
    topt = to.OPTIMIZERS[optimizer](**kwargs).torch_optimizer(tmodel.parameters())
    losses = []
    for step in range(50):
        i = slice(10 * step, 10 * step + 10)
        opt.update(model.params, model.gradient(x[i], t[i]))
        losses.append(float(model.last_layer.loss))
        topt.zero_grad()
        tmodel.loss(torch.from_numpy(x[i]).to(device), torch.from_numpy(t[i]).to(device)
                    ).backward()
        topt.step()
    assert np.mean(losses[-10:]) < np.mean(losses[:10])          # it does learn
    assert_same_params(model, tmodel, f"after 50 {optimizer} steps ({cell})")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^cell: expected one of \['gru', 'lstm', 'rnn'\]"):
        LSTMClassifier(8, 4, 10, cell="tcn")
    with pytest.raises(ValueError, match=r"^hidden_size: expected a positive integer"):
        LSTMClassifier(8, 0, 10)
    model = LSTMClassifier(8, 4, 10)
    with pytest.raises(ValueError, match=r"^x: expected \(N, T, 8\) or \(N, \.\.\.\) with a "
                                         r"multiple of 8 features"):
        model.predict(np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"^cell: "):
        tm.LSTMClassifier(8, 4, 10, cell="tcn")
