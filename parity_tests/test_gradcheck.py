"""scratch.gradient.gradcheck: it passes right gradients and names the entry of wrong ones.

The planted bugs are the three a learner makes most (a wrong sign, a missing
transpose, a dropped term); fast mode must catch each of them, not only the
full check.  (Fast mode checks one random direction per input: a direction
almost orthogonal to the bug's error would miss it.  That chance is small for
bugs that move many entries; the thorough profile, 1000 draws per test, found
no miss.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.layers as sl
import scratch.models as sm
from scratch.functions import sigmoid
from scratch.gradient import GradcheckError, gradcheck
from torchref.testing import strategies as S


def quartic(x):
    return (x ** 4).sum() / 4 + (x ** 2).sum() + x.sum()


def quartic_grad(x):
    return x ** 3 + 2 * x + 1


# ---- planted bugs -------------------------------------------------------------------------

class SignFlippedSigmoid(sl.Sigmoid):
    def backward(self, dout):
        return -dout * (1.0 - self.out) * self.out        # wrong sign


class UntransposedAffine(sl.Affine):
    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return (dout @ self.W).reshape(self.x_shape)      # missing transpose: W, not W.T


class DroppedTargetSoftmaxWithLoss(sl.SoftmaxWithLoss):
    def backward(self, dout=1.0):
        return dout * self.y / self.y.shape[0]            # dropped term: the "- t"


class DroppedDerivativeSigmoid(sl.Sigmoid):
    def backward(self, dout):
        return dout.copy()                                # dropped term: out (1 - out)


# ---- right gradients pass ---------------------------------------------------------------------

@given(x=S.smooth_batch(), fast=st.booleans(), seed=S.seeds)
def test_function_with_hand_derived_gradient_passes(x: np.ndarray, fast: bool, seed: int) -> None:
    before = x.copy()
    result = gradcheck(quartic, x, quartic_grad, fast=fast, seed=seed)
    result.raise_if_failed()
    assert result and result.worst.ratio <= 1
    np.testing.assert_array_equal(x, before)                # the caller's array is unchanged


@given(x=S.smooth_batch(), data=st.data(), fast=st.booleans(), seed=S.seeds)
def test_layers_backward_passes(x: np.ndarray, data: st.DataObject, fast: bool,
                                seed: int) -> None:
    W = data.draw(S.arrays(np.float64, (x.shape[1], 3), 2.0))
    b = data.draw(S.arrays(np.float64, (3,), 2.0))
    labels = data.draw(S.labels_for(x))
    affine = sl.Affine(W, b)
    for layer, inputs in ((affine, x), (sl.Sigmoid(), x), (sl.SoftmaxWithLoss(), (x, labels))):
        gradcheck(layer, inputs, fast=fast, seed=seed).raise_if_failed()
    assert affine.W is W and affine.b is b                   # parameters restored


@given(case=S.mlp_case(dtype=np.float64, max_width=4, max_n=3), fast=st.booleans(),
       seed=S.seeds)
def test_mlp_backprop_passes(case: tuple, fast: bool, seed: int) -> None:
    sizes, x, t, wseed = case
    model = sm.MLP(sizes, "sigmoid", seed=wseed)
    before = {k: v.copy() for k, v in model.params.items()}
    gradcheck(model, (x, t), fast=fast, seed=seed).raise_if_failed()
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


# ---- planted bugs are caught, in both modes ----------------------------------------------------

@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@given(x=S.smooth_batch(), seed=S.seeds)
def test_catches_wrong_sign(fast: bool, x: np.ndarray, seed: int) -> None:
    result = gradcheck(SignFlippedSigmoid(), x, fast=fast, seed=seed)
    assert not result
    w = result.worst
    assert w.input == "x" and w.index is not None
    assert np.sign(w.numerical) == -np.sign(w.analytic)
    with pytest.raises(GradcheckError, match=r"input 'x' index \(\d+, \d+\): numerical"):
        result.raise_if_failed()


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@given(W=S.nonsymmetric_square(), data=st.data(), seed=S.seeds)
def test_catches_missing_transpose(fast: bool, W: np.ndarray, data: st.DataObject,
                                   seed: int) -> None:
    d = W.shape[0]
    x = data.draw(S.arrays(np.float64, st.tuples(st.integers(1, 4), st.just(d)), 3.0))
    b = data.draw(S.arrays(np.float64, (d,), 3.0))
    result = gradcheck(UntransposedAffine(W, b), x, fast=fast, seed=seed)
    assert not result and result.worst.input == "x"          # dW and db are right
    assert gradcheck(sl.Affine(W, b), x, fast=fast, seed=seed)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@given(a=S.smooth_batch(), data=st.data(), seed=S.seeds)
def test_catches_dropped_term(fast: bool, a: np.ndarray, data: st.DataObject,
                              seed: int) -> None:
    t = data.draw(S.labels_for(a))
    assert not gradcheck(DroppedTargetSoftmaxWithLoss(), (a, t), fast=fast, seed=seed)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@given(x=S.smooth_batch(), n_classes=st.integers(2, 4), data=st.data(), seed=S.seeds)
def test_catches_dropped_term_inside_mlp(fast: bool, x: np.ndarray, n_classes: int,
                                         data: st.DataObject, seed: int) -> None:
    """A hidden layer's backward that forgets sigmoid' makes the model's backprop wrong."""
    t = data.draw(S.labels_for(np.zeros((x.shape[0], n_classes))))
    model = sm.MLP([x.shape[1], 3, n_classes], "sigmoid", seed=data.draw(S.seeds))
    model.layers[1].__class__ = DroppedDerivativeSigmoid
    result = gradcheck(model, (x, t), fast=fast, seed=seed)
    assert not result and result.worst.input in ("W1", "b1")  # only the first layer is wrong


# ---- the result and its counts ----------------------------------------------------------------

def test_message_names_input_index_numerical_and_analytic() -> None:
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    result = gradcheck(quartic, {"x": x}, {"x": quartic_grad(x) * np.array([[1, 1], [1, 0]])})
    w = result.worst
    assert (w.input, w.index) == ("x", (1, 1))
    assert w.analytic == 0.0 and abs(w.numerical - quartic_grad(0.25)) < 1e-6
    msg = result.message()
    assert "gradcheck FAILED" in msg and "input 'x' index (1, 1)" in msg
    assert f"analytic {0.0:.10g}" in msg and "numerical 1.515625" in msg


def test_evaluation_counts() -> None:
    """Full: 2 per entry; fast: 2 per direction per input, whatever the sizes."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(5)
    def f(a, b):
        return quartic(a) + quartic(b)
    full = gradcheck(f, (a, b), (quartic_grad(a), quartic_grad(b)))
    assert (full.n_evals, full.n_grad_evals, full.n_checked) == (2 * 17, 0, 17)
    fast = gradcheck(f, (a, b), (quartic_grad(a), quartic_grad(b)), fast=True, n_directions=3)
    assert (fast.n_evals, fast.n_checked) == (2 * 3 * 2, 6)
    layer = gradcheck(sl.Affine(rng.standard_normal((4, 2)), np.zeros(2)), a, fast=True)
    assert (layer.n_evals, layer.n_grad_evals) == (2 + 2 * 3, 2)  # x, W, b: 3 inputs


def test_fast_failure_is_localised_by_a_full_recheck_of_that_input() -> None:
    x = np.array([[0.5, -1.0, 2.0]])
    grad = quartic_grad(x)
    grad[0, 2] += 1.0
    result = gradcheck(quartic, x, grad, fast=True, seed=0)
    assert not result and result.fast_failure is not None
    assert result.worst.index == (0, 2) and result.n_evals == 2 + 2 * 3
    assert "fast mode saw it along" in result.message()


def test_integer_inputs_are_constants() -> None:
    a = np.array([[1.0, 2.0, 0.5]])
    t = np.array([2])
    def f(a, t):
        return -sl.softmax_cross_entropy(a, t)
    grad = -(sl.softmax(a) - np.eye(3)[t])
    assert gradcheck(f, (a, t), [grad])


def test_agrees_with_torch_gradcheck_verdict() -> None:
    """Same rule as torch.autograd.gradcheck: both accept sigmoid, both reject a wrong sign."""
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    def hand(z):
        return sigmoid(z) * (1 - sigmoid(z))
    ours = gradcheck(lambda z: sigmoid(z).sum(), x, hand)
    theirs = torch.autograd.gradcheck(torch.sigmoid, torch.tensor(x, requires_grad=True))
    assert bool(ours) and theirs
    assert not gradcheck(lambda z: sigmoid(z).sum(), x, lambda z: -hand(z))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"eps": 0.0}, "eps: expected a positive finite number"),
    ({"atol": -1.0}, "atol, rtol"),
    ({"n_directions": 0}, "n_directions"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gradcheck(quartic, np.ones(2), quartic_grad, **kwargs)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="f: expected a scalar output, got shape"):
        gradcheck(lambda x: x ** 2, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="analytic_grads: required"):
        gradcheck(quartic, np.ones(3))
    with pytest.raises(ValueError, match=r"analytic gradient of 'inputs\[0\]': expected shape"):
        gradcheck(quartic, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"model.params\['W1'\]: gradcheck needs float64"):
        gradcheck(sm.MLP([2, 2], dtype=np.float32), (np.ones((1, 2)), np.array([0])))
    with pytest.raises(ValueError, match="inputs\\[0\\]: expected finite values"):
        gradcheck(quartic, np.array([np.nan]), quartic_grad)
