"""CNN and DeepConvNet: scratch backprop vs torch autograd vs central differences, SGD and
whole epochs in lockstep, the reference text's state_dict, the course's shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from parity_tests.model_checks import (
    assert_model_parity,
    assert_same_params,
    set_shared_masks,
    steps_in_lockstep,
)
from scratch.conv import Pooling
from scratch.dropout import Dropout
from scratch.gradient import gradcheck
from scratch.layers import Relu
from torchref.lockstep import Run, RunConfig
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

MARGIN = 1e-4   # 100x gradcheck's eps = 1e-6


def build(case: dict, device: torch.device) -> tuple:
    """(model, tmodel, x, t, xt, tt) from ``S.spec_net_case``, dropout masks shared."""
    model = getattr(sm, case["kind"])(**case["kwargs"], seed=case["seed"],
                                       dtype=case["x"].dtype)
    tmodel = getattr(tm, case["kind"]).from_scratch(model, device=device)
    set_shared_masks(model, tmodel, case["masks"], device)
    x, t = case["x"], case["t"]
    return model, tmodel, x, t, torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)


@given(case=S.spec_net_case())
def test_cnn_models_parity(case: dict, device: torch.device) -> None:
    """Train-mode loss (with the L2 term) and every gradient, test-mode logits, loss and
    accuracy: scratch backprop vs the torch mirror, dropout masks shared."""
    model, tmodel, x, t, xt, tt = build(case, device)
    assert_model_parity(model, tmodel, x, t, xt, tt)


def assume_smooth(model: sm.CNN | sm.DeepConvNet, x: np.ndarray) -> None:
    """Keep central differences off the loss's kinks (documented ``assume``): every relu
    input at least ``MARGIN`` from 0 and, in every max-pool window whose max is positive,
    the two largest values ``MARGIN`` apart (or the winner could swap).  A weight moved by
    eps = 1e-6 moves these values by ~1e-6 here (|x| <= 1, O(1) weights)."""
    for layer in model.layers.values():
        if isinstance(layer, Relu):
            assume(np.abs(x).min() > MARGIN)
        if isinstance(layer, Pooling):
            win, _ = layer.taps(x)
            taps = np.sort(win.reshape(*win.shape[:2], 4, -1), axis=2)
            top, second = taps[:, :, -1], taps[:, :, -2]
            assume(np.all((top == 0) | (top - second > MARGIN)))
        x = layer.forward(x, True) if isinstance(layer, Dropout) else layer.forward(x)


class TrainingLoss:
    """What ``gradcheck`` differentiates: ``model.loss`` in training mode (the fixed dropout
    masks applied, as ``model.gradient`` applies them), with the model's ``params``."""

    def __init__(self, model: sm.CNN | sm.DeepConvNet) -> None:
        self.model, self.params, self.gradient = model, model.params, model.gradient

    def loss(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.model.loss(x, t, train_flg=True)


@S.long_run
@given(case=S.spec_net_case(dtype=np.float64, max_n=2, unique=True), seed=S.seeds)
def test_cnn_models_gradcheck_and_autograd(case: dict, seed: int) -> None:
    """float64: the hand-derived backprop against central differences (``gradcheck``, fast
    mode: 3 random directions per parameter, the models have ~10^4-10^5 weights) and against
    autograd entry by entry, dropout masks fixed."""
    model, tmodel, x, t, xt, tt = build(case, torch.device("cpu"))
    assume_smooth(model, x)
    gradcheck(TrainingLoss(model), (x, t), fast=True, seed=seed, n_directions=3).raise_if_failed()
    grads, tgrads = model.gradient(x, t), tmodel.gradient(xt, tt)
    for k in grads:
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


@given(case=S.spec_net_case(max_n=3), steps=st.integers(1, 4), lr=st.floats(1e-3, 0.1))
def test_cnn_models_sgd_steps_in_lockstep(case: dict, steps: int, lr: float,
                                          device: torch.device) -> None:
    """k steps of scratch SGD and of torch.optim.SGD from the same weights agree."""
    model, tmodel, x, t, xt, tt = build(case, device)
    opt, topt = so.SGD(lr), torch.optim.SGD(tmodel.parameters(), lr=lr)
    steps_in_lockstep(model, tmodel, opt, topt, (x, t, xt, tt), steps)
    assert_same_params(model, tmodel, f"after {steps} SGD steps")


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", ["cnn", "deepcnn"])
def test_digits_epoch_in_lockstep(model: str) -> None:
    """``scripts/train.py``'s engine (``--model cnn|deepcnn --impl both``): one epoch on the
    digits in float64, scratch and torch from the same weights on the same batches agree
    after every step and in the epoch's metrics."""
    cfg = RunConfig(model=model, impl="both", dtype="float64", epochs=1, batch_size=128,
                    lr=0.05, seed=3, progress=False)
    run = Run(cfg)
    result = run.run()
    assert len(result["drift"]) == -(-len(run.x) // 128)      # every step compared
    params = {impl: tr.params_numpy() for impl, tr in run.trainers.items()}
    for k, v in params["scratch"].items():
        assert_close(params["torch"][k], v, msg=f"{k} after one epoch")
    assert_close(np.array([d["loss_diff"] for d in result["drift"]]),
                 np.zeros(len(result["drift"])), msg="per-step |loss_scratch - loss_torch|")
    ours, theirs = result["history"]
    for key in ("train_loss", "train_eval_loss", "val_loss"):
        assert_close(theirs[key], ours[key], msg=key)
    assert (ours["train_acc"], ours["val_acc"]) == (theirs["train_acc"], theirs["val_acc"])
    test = result["test"]
    assert_close(test["torch"]["test_loss"], test["scratch"]["test_loss"], msg="test_loss")
    assert test["torch"]["test_acc"] == test["scratch"]["test_acc"]


class TextCNN(nn.Module):
    """The reference text's module, ``__init__`` copied literally (its ``forward``, which
    pools twice, is not: it cannot feed fc1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)


@pytest.mark.parametrize("use_dropout", [False, True])
def test_text_state_dict_loads_and_computes_the_text_layers(use_dropout: bool) -> None:
    """The text's state_dict loads into ``torchref.models.CNN`` as it is (strict), crosses to
    scratch, and both compute the text's layers with one pool (test mode: dropout is the
    identity, as ``nn.Dropout`` in eval)."""
    torch.manual_seed(0)
    text = TextCNN().double()
    model = tm.CNN(use_dropout=use_dropout)
    model.load_state_dict(text.state_dict())       # strict: same keys, same shapes
    assert list(model.state_dict()) == list(text.state_dict())
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    h = F.max_pool2d(F.relu(text.conv2(F.relu(text.conv1(x)))), 2)
    expected = text.fc2(F.relu(text.fc1(torch.flatten(h, 1))))
    assert_close(model.predict(x), expected, msg="torchref CNN vs the text's layers")
    assert_close(model.to_scratch().predict(x.numpy()), expected,
                 msg="scratch CNN vs the text's layers")


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("kind", S.SPEC_NET_KINDS)
def test_conversion_round_trip_is_exact(kind: str, dtype: type, device: torch.device) -> None:
    model = getattr(sm, kind)((2, 9, 9), hidden_size=6, output_size=3, seed=0, dtype=dtype,
                              weight_decay_lambda=0.1)
    back = getattr(tm, kind).from_scratch(model, device=device).to_scratch()
    assert type(back) is type(model) and back.options() == model.options()
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)


def test_shapes_of_the_text_and_the_course() -> None:
    """28x28: the CNN's fc1 takes 64x12x12 = 9216, the DeepConvNet's 64x4x4; 8x8 digits:
    256 and 64x1x1 (the DeepConvNet's paddings keep every pool's input at least 2x2)."""
    cnn, deep = sm.CNN(seed=0), sm.DeepConvNet(seed=0)
    assert {k: v.shape for k, v in cnn.params.items()} == {
        "W1": (32, 1, 3, 3), "b1": (32,), "W2": (64, 32, 3, 3), "b2": (64,),
        "W3": (9216, 128), "b3": (128,), "W4": (128, 10), "b4": (10,)}
    assert [deep.params[f"W{i}"].shape[0] for i in range(1, 7)] == [16, 16, 32, 32, 64, 64]
    assert deep.output_shapes["pool3"] == (64, 4, 4) and deep.params["W7"].shape == (1024, 50)
    assert deep.output_shapes["conv4"] == (32, 16, 16)                  # padding 2
    small = sm.DeepConvNet((1, 8, 8), seed=0)
    assert [small.output_shapes[f"pool{i}"] for i in (1, 2, 3)] == [
        (16, 4, 4), (32, 3, 3), (64, 1, 1)]
    assert sm.CNN((1, 8, 8)).params["W3"].shape == (256, 128)
    assert sm.DeepConvNet(seed=0).predict(np.zeros((2, 1, 28, 28))).shape == (2, 10)
    for k, fan_in in (("W1", 9), ("W4", 32 * 9), ("W7", 1024)):         # He: sqrt(2 / fan_in)
        assert abs(deep.params[k].std() / np.sqrt(2 / fan_in) - 1) < 0.25, k
    assert abs(float(tm.DeepConvNet(seed=0).params["W7"].detach().std())
               / np.sqrt(2 / 1024) - 1) < 0.05
    assert [type(layer).__name__ for layer in deep.layers.values()][-4:] == [
        "Affine", "Relu", "Dropout", "Affine"]                           # dropout on by default


def test_errors_same_on_both_sides() -> None:
    for cls in (sm.CNN, tm.CNN):
        with pytest.raises(ValueError, match=r"in_shape: \(1, 5, 5\) is too small for layer"):
            cls((1, 5, 5))
        with pytest.raises(ValueError, match="in_shape: expected"):
            cls((28, 28))
        with pytest.raises(ValueError, match="hidden_size: expected a positive integer"):
            cls(hidden_size=0)
    for cls in (sm.DeepConvNet, tm.DeepConvNet):
        with pytest.raises(ValueError, match=r"in_shape: \(1, 3, 3\) is too small for layer"):
            cls((1, 3, 3))
        with pytest.raises(ValueError, match=r"dropout_ratio: expected a number in \[0, 1\)"):
            cls(dropout_ratio=1.0)
        with pytest.raises(ValueError, match="weight_init_std: expected"):
            cls((1, 8, 8), weight_init_std="lecun")
