"""Inputs at the edges: the same answer as PyTorch, or the same clear error on both sides.

Empty batches, targets that are not distributions, NumPy integers, non-numeric or
non-finite hyper-parameters, and optimizer updates that must validate before they
change anything (see ``torchref.tolerance``, "Inputs at the edges").
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import scratch.convnet as scn
import scratch.distillation as sd
import scratch.dropout as sdo
import scratch.im2col as sim
import scratch.layers as sl
import scratch.losses as sls
import scratch.models as sm
import scratch.optim as so
import torchref.convnet as tcn
import torchref.distillation as td
import torchref.dropout as tdo
import torchref.im2col as tim
import torchref.layers as tl
import torchref.losses as tls
import torchref.models as tm
import torchref.optim as to


def same_error(scratch_call, torch_call, pattern: str) -> None:
    """Both calls raise ValueError matching ``pattern``, with the same message."""
    with pytest.raises(ValueError, match=pattern) as ours:
        scratch_call()
    with pytest.raises(ValueError, match=pattern) as theirs:
        torch_call()
    assert str(ours.value) == str(theirs.value)


def T(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


# ---- 10. empty batches: a ValueError naming the argument, on both sides ------------------------

E2, E4 = np.zeros((0, 3)), np.zeros((0, 1, 4, 4))
NO_LABELS = np.zeros(0, dtype=np.int64)
EMPTY = {   # name -> (scratch call, torch call, argument named)
    "Affine": (lambda: sl.Affine(np.ones((3, 2)), np.zeros(2)).forward(E2),
               lambda: tl.Affine(torch.ones(3, 2, dtype=torch.float64),
                                 torch.zeros(2, dtype=torch.float64))(T(E2)), "x"),
    "Convolution": (lambda: sl.Convolution(np.ones((2, 1, 3, 3)), np.zeros(2)).forward(E4),
                    lambda: tl.Convolution(torch.ones(2, 1, 3, 3, dtype=torch.float64),
                                           torch.zeros(2, dtype=torch.float64))(T(E4)), "x"),
    "Pooling": (lambda: sl.Pooling(2, 2).forward(E4), lambda: tl.Pooling(2, 2)(T(E4)), "x"),
    "BatchNormalization eval": (
        lambda: sl.BatchNormalization(np.ones(3), np.zeros(3)).forward(E2, train_flg=False),
        lambda: tl.BatchNormalization(torch.ones(3, dtype=torch.float64),
                                      torch.zeros(3, dtype=torch.float64))(T(E2), False), "x"),
    "SoftmaxWithLoss": (lambda: sl.SoftmaxWithLoss().forward(E2, NO_LABELS),
                        lambda: tl.SoftmaxWithLoss()(T(E2), T(NO_LABELS)), "x"),
    "softmax_cross_entropy": (lambda: sls.softmax_cross_entropy(E2, NO_LABELS),
                              lambda: tls.softmax_cross_entropy(T(E2), T(NO_LABELS)), "logits"),
    "cross_entropy_error": (lambda: sls.cross_entropy_error(E2, np.zeros((0, 3))),
                            lambda: tls.cross_entropy_error(T(E2), T(np.zeros((0, 3)))), "y"),
    "mean_squared_error": (lambda: sls.mean_squared_error(E2, E2),
                           lambda: tls.mean_squared_error(T(E2), T(E2)), "y"),
    "distillation_loss": (lambda: sd.distillation_loss(E2, E2, NO_LABELS),
                          lambda: td.distillation_loss(T(E2), T(E2), T(NO_LABELS)),
                          "student_logits"),
    "DistillationLoss": (lambda: sl.DistillationLoss().forward(E2, E2, NO_LABELS),
                         lambda: tl.DistillationLoss()(T(E2), T(E2), T(NO_LABELS)),
                         "student_logits"),
    "MLP.loss": (lambda: sm.MLP([3, 2], seed=0).loss(E2, NO_LABELS),
                 lambda: tm.MLP.from_scratch(sm.MLP([3, 2], seed=0)).loss(T(E2), T(NO_LABELS)),
                 "x"),
    "SimpleConvNet.predict": (
        lambda: scn.SimpleConvNet((1, 4, 4), {"filter_num": 1, "filter_size": 1},
                                  2, 2, seed=0).predict(E4),
        lambda: tcn.SimpleConvNet.from_scratch(scn.SimpleConvNet(
            (1, 4, 4), {"filter_num": 1, "filter_size": 1}, 2, 2, seed=0)).predict(T(E4)), "x"),
}


@pytest.mark.parametrize("name", EMPTY)
def test_an_empty_batch_is_a_value_error_naming_the_argument(name: str) -> None:
    ours, theirs, arg = EMPTY[name]
    same_error(ours, theirs, rf"^{arg}: expected a batch of at least one sample, got shape \(0,")


def test_element_wise_layers_map_an_empty_batch_to_an_empty_batch_as_torch_does() -> None:
    """No mean over the batch, nothing undefined: empty in, empty out (torch's answer)."""
    for ours, theirs in ((sl.Relu(), tl.Relu()), (sl.Sigmoid(), tl.Sigmoid())):
        assert ours.forward(E2).shape == theirs(T(E2)).shape == (0, 3)
        assert ours.backward(E2).shape == (0, 3)


# ---- 8. targets that are not distributions ------------------------------------------------------

NOT_DISTRIBUTIONS = [
    (np.array([[2.0, 0, 0], [0, 0.5, 0]]), "a row summing to 0.5"),      # the example
    (np.array([[1.5, -0.5, 0.0]]), r"probabilities >= 0, got -0.5"),
    (np.array([[0.5, 0.5, 0.1]]), "a row summing to 1.1"),
    (np.array([[np.nan, 1.0, 0.0]]), "a row summing to nan"),
]


@pytest.mark.parametrize(("t", "says"), NOT_DISTRIBUTIONS)
def test_target_rows_must_be_distributions_on_both_sides(t: np.ndarray, says: str) -> None:
    x = np.zeros(t.shape)
    same_error(lambda: sl.SoftmaxWithLoss().forward(x, t),
               lambda: tl.SoftmaxWithLoss()(T(x), T(t)), rf"^t: expected .*{says}")
    same_error(lambda: sl.DistillationLoss().forward(x, x, t),
               lambda: tl.DistillationLoss()(T(x), T(x), T(t)), rf"^labels: expected .*{says}")
    same_error(lambda: sd.distillation_loss(x, x, t),
               lambda: td.distillation_loss(T(x), T(x), T(t)), rf"^labels: expected .*{says}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounded_probability_rows_are_accepted(dtype: type) -> None:
    """Softmax rows sum to 1 only up to rounding: within 4 C eps they are distributions."""
    z = np.random.default_rng(0).standard_normal((64, 10)).astype(dtype) * 5
    p = (np.exp(z) / np.exp(z).sum(-1, keepdims=True)).astype(dtype)
    assert (p.sum(-1) != 1).any()
    layer = sl.SoftmaxWithLoss()
    layer.forward(z, p)
    xt = T(z).requires_grad_(True)
    tl.SoftmaxWithLoss()(xt, T(p)).backward()
    np.testing.assert_allclose(layer.backward(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)


# ---- 9. SoftmaxWithLoss / DistillationLoss: dout is a scalar ------------------------------------

@pytest.mark.parametrize("make", [sl.SoftmaxWithLoss, sl.DistillationLoss])
def test_loss_layer_backward_takes_a_scalar_dout(make) -> None:
    layer, x, labels = make(), np.zeros((2, 3)), np.array([0, 1])
    layer.forward(*((x, labels) if make is sl.SoftmaxWithLoss else (x, x, labels)))
    for bad in (np.ones(2), np.ones((2, 3)), np.ones((2, 1)), "1"):
        with pytest.raises(ValueError, match=r"^dout: expected a scalar"):
            layer.backward(bad)
    np.testing.assert_array_equal(layer.backward(np.float32(2.0)), 2 * layer.backward(1.0))
    np.testing.assert_array_equal(layer.backward(np.array(2.0)), 2 * layer.backward())


# ---- 11. numbers: NumPy integers, non-numeric and non-finite hyper-parameters ------------------

def test_numpy_integers_are_accepted_wherever_python_ints_are() -> None:
    i = np.int64
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float64).reshape(2, 1, 6, 6)
    W, b = np.ones((2, 1, 3, 3)), np.zeros(2)
    ref = sl.Convolution(W, b, stride=2, pad=1).forward(x)
    np.testing.assert_array_equal(sl.Convolution(W, b, stride=i(2), pad=i(1)).forward(x), ref)
    np.testing.assert_array_equal(sl.Convolution(W, b, stride=(i(2), 2), pad=np.int32(1))
                                  .forward(x), ref)
    got = tl.Convolution(T(W), T(b), stride=i(2), pad=i(1))(T(x))
    np.testing.assert_allclose(got.detach().numpy(), ref)
    pooled = sl.Pooling(i(2), i(2), stride=i(2), pad=i(1)).forward(x)
    np.testing.assert_array_equal(pooled, tl.Pooling(i(2), i(2), i(2), i(1))(T(x)).numpy())
    np.testing.assert_array_equal(sim.im2col(x, i(3), i(3), i(2), i(1)),
                                  tim.im2col(T(x), i(3), i(3), i(2), i(1)).numpy())
    col = sim.im2col(x, 3, 3, 2, 1)
    np.testing.assert_array_equal(sim.col2im(col, tuple(i(v) for v in x.shape), i(3), i(3),
                                             i(2), i(1)), sim.col2im(col, x.shape, 3, 3, 2, 1))
    assert sm.MLP([i(4), i(3), i(2)], seed=0).sizes == [4, 3, 2]
    assert tm.MLP([i(4), i(3), i(2)], seed=0).sizes == [4, 3, 2]
    conv = {"filter_num": i(2), "filter_size": i(3), "pad": i(1), "stride": i(1)}
    for cls in (scn.SimpleConvNet, tcn.SimpleConvNet):
        net = cls((i(1), i(6), i(6)), conv, hidden_size=i(5), output_size=i(3), seed=0)
        assert net.predict(x if cls is scn.SimpleConvNet else T(x)).shape == (2, 3)
    for bad in (2.0, "2", True, None):
        same_error(lambda s=bad: sl.Convolution(W, b, stride=s),
                   lambda s=bad: tl.Convolution(T(W), T(b), stride=s), "^stride: expected")


BAD_NUMBERS = ["0.1", float("inf"), float("nan"), None, True]
HYPER = [   # (scratch constructor, torch constructor, argument)
    (so.SGD, to.SGD, "lr"), (so.Adam, to.Adam, "lr"), (so.Adam, to.Adam, "eps"),
    (so.Adam, to.Adam, "beta1"), (so.Adam, to.Adam, "beta2"), (so.AdaGrad, to.AdaGrad, "eps"),
    (so.RMSprop, to.RMSprop, "decay_rate"), (so.Momentum, to.Momentum, "momentum"),
    (so.Nesterov, to.Nesterov, "momentum"), (sdo.Dropout, tdo.Dropout, "ratio"),
    (sl.DistillationLoss, tl.DistillationLoss, "T"),
    (sl.DistillationLoss, tl.DistillationLoss, "alpha"),
    (lambda **k: sm.MLP([2, 2], **k), lambda **k: tm.MLP([2, 2], **k), "weight_decay_lambda"),
    (lambda **k: sm.MLP([2, 2], **k), lambda **k: tm.MLP([2, 2], **k), "dropout_ratio"),
    (lambda **k: sl.BatchNormalization(np.ones(2), np.zeros(2), **k),
     lambda **k: tl.BatchNormalization(torch.ones(2), torch.zeros(2), **k), "momentum"),
    (lambda **k: sl.BatchNormalization(np.ones(2), np.zeros(2), **k),
     lambda **k: tl.BatchNormalization(torch.ones(2), torch.zeros(2), **k), "eps"),
]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
@pytest.mark.parametrize(("ours", "theirs", "arg"), HYPER,
                         ids=[f"{getattr(o, '__name__', 'model')}-{a}" for o, _, a in HYPER])
def test_a_bad_hyper_parameter_is_an_error_naming_it(ours, theirs, arg: str, bad) -> None:
    if ours is sl.DistillationLoss and arg == "alpha" and bad is None:
        pytest.skip("alpha=None is DistillationLoss's default: the reference text's recipe")
    name = "(T|temperature)" if arg == "T" else arg      # T's older name is temperature
    same_error(lambda: ours(**{arg: bad}), lambda: theirs(**{arg: bad}),
               rf"^{name}: expected a .*, got {re.escape(repr(bad))}$")


def test_a_temperature_whose_reciprocal_overflows_is_refused() -> None:
    s = np.zeros((2, 3))
    for T_ in (1e-310, 5e-324):
        same_error(lambda t=T_: sd.distillation_loss(s, s, np.array([0, 1]), temperature=t),
                   lambda t=T_: td.distillation_loss(T(s), T(s), T(np.array([0, 1])),
                                                     temperature=t),
                   r"^temperature: .* too small: 1/temperature overflows")
    assert np.isfinite(sd.distillation_loss(s, s, np.array([0, 1]), temperature=1e-300))


# ---- 11. optimizers: validate every gradient first; keys fixed by the first update -------------

def _params(torch_side: bool) -> dict:
    p = {"W": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}
    return {k: T(v.copy()).requires_grad_(True) for k, v in p.items()} if torch_side else p


def _grads(torch_side: bool, **override) -> dict:
    g = {"W": np.full((2, 3), 0.5), "b": np.full(3, -0.5), **override}
    numeric = lambda v: isinstance(v, np.ndarray) and v.dtype.kind == "f"  # noqa: E731
    return {k: T(v) if numeric(v) else v for k, v in g.items()} if torch_side else g


def _state(opt, torch_side: bool) -> list:
    if torch_side:
        return [] if opt.optimizer is None else \
            [v.clone() for s in opt.optimizer.state.values() for v in s.values()
             if isinstance(v, torch.Tensor)]
    return [np.array(v, copy=True) for d in vars(opt).values() if isinstance(d, dict)
            for v in d.values()]


BAD_GRADS = {"a wrong shape in the last key": {"b": np.ones(4)},
             "a missing key": {"b": None},
             "strings": {"b": np.array(["1", "2", "3"])}}


@pytest.mark.parametrize("name", sorted(so.OPTIMIZERS))
@pytest.mark.parametrize("torch_side", [False, True], ids=["scratch", "torchref"])
@pytest.mark.parametrize("bad", BAD_GRADS)
def test_a_bad_gradient_changes_no_parameter_and_no_state(name: str, torch_side: bool,
                                                          bad: str) -> None:
    opt = (to if torch_side else so).OPTIMIZERS[name](lr=0.1)
    params = _params(torch_side)
    opt.update(params, _grads(torch_side))                 # some state to keep
    before = {k: np.array(v.detach().numpy() if torch_side else v, copy=True)
              for k, v in params.items()}
    state = _state(opt, torch_side)
    grads = _grads(torch_side, **BAD_GRADS[bad])
    grads = {k: v for k, v in grads.items() if v is not None}
    with pytest.raises(ValueError, match=r"^grads(\['b'\])?: "):
        opt.update(params, grads)
    for k, v in params.items():
        np.testing.assert_array_equal(v.detach().numpy() if torch_side else v, before[k],
                                      err_msg=k)
    after = _state(opt, torch_side)
    assert len(after) == len(state)
    for a, b in zip(after, state, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", sorted(so.OPTIMIZERS))
def test_a_new_parameter_key_is_the_same_error_on_both_sides(name: str) -> None:
    ours, theirs = so.OPTIMIZERS[name](lr=0.1), to.OPTIMIZERS[name](lr=0.1)
    p, pt = _params(False), _params(True)
    ours.update(p, _grads(False))
    theirs.update(pt, _grads(True))
    extra = {"c": np.ones(1)}
    same_error(lambda: ours.update({**p, **extra}, {**_grads(False), **extra}),
               lambda: theirs.update({**pt, "c": torch.ones(1, dtype=torch.float64)},
                                     {**_grads(True), "c": torch.ones(1, dtype=torch.float64)}),
               r"^params: keys differ from the optimizer's first update \(added \['c'\]")
    # the same keys in another order, and a new tensor for a key, keep each key's state
    ours.update({"b": p["b"], "W": p["W"]}, _grads(False))
    pt2 = {"b": pt["b"].detach().clone().requires_grad_(True), "W": pt["W"]}
    theirs.update(pt2, _grads(True))
    for k in p:
        np.testing.assert_allclose(pt2[k].detach().numpy(), p[k], rtol=1e-12, err_msg=k)
