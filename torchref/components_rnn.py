"""The recurrent rows of the components table (imported at the end of ``torchref.components``).

TimeRNN/TimeLSTM/TimeGRU against their ``torchref.rnn`` mirrors and against the
plain ``nn.RNN``/``nn.LSTM``/``nn.GRU`` run with the drawn weights
(``torch.func.functional_call``, so autograd gives the native gradients of
Wx, Wh and b too); Embedding, TimeAffine, TimeSoftmaxWithLoss, clip_grads and
the sequence classifier in its three cells.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

import scratch.embedding as semb
import scratch.functions as sf
import scratch.models_seq as sms
import scratch.optim as so
import scratch.rnn as srnn
import scratch.time_layers as stl
import torchref.embedding as temb
import torchref.functions as tf
import torchref.models_seq as tms
import torchref.optim as to
import torchref.rnn as trnn
import torchref.time_layers as ttl
from torchref.parity import Case, Component, Sides, _dout
from torchref.registry import NO_SECOND_ORDER, inputs, model_runners, register

KINDS = {"RNN": (srnn.TimeRNN, trnn.TimeRNN, torch.nn.RNN),
         "LSTM": (srnn.TimeLSTM, trnn.TimeLSTM, torch.nn.LSTM),
         "GRU": (srnn.TimeGRU, trnn.TimeGRU, torch.nn.GRU)}
PARAMS = {"RNN": ("Wx", "Wh", "b"), "LSTM": ("Wx", "Wh", "b"), "GRU": ("Wx", "Wh", "bx", "bh")}
STATES = {"RNN": ("h0",), "LSTM": ("h0", "c0"), "GRU": ("h0",)}


def _copies(values: tuple) -> list:
    return [v.copy() if isinstance(v, np.ndarray) else v for v in values]


def layer_scratch_runner(cls: type, params: tuple[str, ...], input_grad: str | None,
                         extra: tuple[str, ...] = ()) -> Callable[[Case, int], Sides]:
    """A scratch runner for a layer whose backward leaves more than ``dx`` (``dh0``, ``dc0``)
    or returns None (Embedding): the output, ``input_grad`` (the name of backward's result),
    every ``d<param>`` and every ``d<extra>`` attribute; inputs and dout must stay unchanged."""
    def run(case: Case, dout_seed: int) -> Sides:
        layer, args = cls(*_copies(case.init)), _copies(case.args)
        out = layer.forward(*args, **case.kwargs)
        dout = _dout(out, dout_seed, case.dout_edges)
        before = dout.copy()
        dx = layer.backward(dout)
        for name, a, b in [("dout", dout, before), *zip(("args",) * len(args), args, case.args,
                                                         strict=True)]:
            if isinstance(b, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
                raise AssertionError(f"the scratch side modified its {name} in place")
        grads = {f"d{p}": getattr(layer, f"d{p}") for p in (*params, *extra)}
        if input_grad:
            grads[input_grad] = dx
        return {"out": out}, grads
    return run


def native_recurrent(kind: str) -> Callable[..., torch.Tensor]:
    """The plain torch module (one layer, batch_first) run with the drawn course-layout weights:
    ``weight_ih_l0 = Wx^T``, ``weight_hh_l0 = Wh^T``, ``bias_ih_l0 = b``, ``bias_hh_l0 = 0``
    (GRU: ``bx``, ``bh``)."""
    n = len(PARAMS[kind])

    def native(*tensors: torch.Tensor) -> torch.Tensor:
        (Wx, Wh, *biases), (xs, *states) = tensors[:n], tensors[n:]
        if kind != "GRU":
            biases.append(torch.zeros_like(biases[0]))
        module = KINDS[kind][2](Wx.shape[0], Wh.shape[0], batch_first=True, dtype=Wx.dtype,
                                device=Wx.device)
        weights = dict(zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           (Wx.T.contiguous(), Wh.T.contiguous(), *biases), strict=True))
        state = tuple(s[None] for s in states)
        hs, _ = functional_call(module, weights, (xs, state if kind == "LSTM" else state[0]))
        return hs
    return native


# ---- pinned non-finite edges (Component.examples; parity_tests/test_components.py) ---------------

inf, nan = np.inf, np.nan
ROW = np.array([[-inf, inf, nan, 0.0, -0.0, 1.5]])
ELEMENTWISE_EDGES = (Case((ROW,), dout_edges=True), Case((ROW,)))


def recurrent_edges(kind: str) -> tuple[Case, ...]:
    """xs with +-inf/NaN at some steps (finite dout), then finite xs with a non-finite initial
    state and a non-finite dout: N=2, T=3, D=2, H=2, weights without zeros (no 0 * inf)."""
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    Wx = np.linspace(-0.9, 0.8, 2 * G * 2).reshape(2, G * 2)
    Wh = np.linspace(0.7, -0.6, 2 * G * 2).reshape(2, G * 2)
    biases = (np.linspace(-0.5, 0.5, G * 2),) * (2 if kind == "GRU" else 1)
    xs = np.array([[[inf, 0.5], [0.5, -1.0], [1.0, 0.25]], [[nan, 1.0], [0.5, -inf], [0.5, 0.5]]])
    finite = np.array([[[0.5, -0.5], [1.0, 0.25], [-1.0, 2.0]]] * 2)
    h0, bad = np.array([[0.5, -0.5], [0.25, 1.0]]), np.array([[inf, 0.5], [-inf, nan]])
    states = (h0, h0) if kind == "LSTM" else (h0,)
    bad_states = (bad, np.array([[0.5, -inf], [nan, 1.0]])) if kind == "LSTM" else (bad,)
    init = (Wx, Wh, *biases)
    return (Case((xs, *states), init), Case((finite, *bad_states), init, dout_edges=True),
            Case((finite, *states), init, dout_edges=True))


_scores = np.array([[[-inf, 0.0, 1.0], [0.5, -inf, 0.0], [-inf, 0.5, 0.0], [inf, 0.0, 1.0],
                     [nan, 0.0, 1.0], [-inf, -inf, 0.0]]])
# -inf at an ignored step (one finite score in its row), never +inf/NaN: torch's backward
# gives that step NaN there (torchref.tolerance)
TIME_TARGETS_EDGES = tuple(
    Case((_scores[:, :3], np.array([[1, 0, ig]])), (ig,)) for ig in (-100, 2)) + tuple(
    Case((_scores, np.array([[1, 0, ig, 2, 1, 2]])), (ig,)) for ig in (-100, 0))


register(Component("tanh", sf.tanh, tf.tanh, inputs("elementwise_case"), native=torch.tanh,
                   backward=lambda dout, x: dout * sf.tanh_grad(x), group="functions",
                   examples=ELEMENTWISE_EDGES))
register(Component("tanh_grad", sf.tanh_grad, tf.tanh_grad, inputs("elementwise_case"),
                   native=lambda x: torch.ops.aten.tanh_backward(torch.ones_like(x), torch.tanh(x)),
                   skip={"backward": NO_SECOND_ORDER}, group="functions",
                   examples=ELEMENTWISE_EDGES))

for _kind, (_s, _t, _native) in KINDS.items():
    register(Component(
        f"Time{_kind}", _s, _t, inputs("rnn_case", kind=_kind), native=native_recurrent(_kind),
        params=PARAMS[_kind], grad_args=tuple(range(1 + len(STATES[_kind]))),
        run_scratch=layer_scratch_runner(_s, PARAMS[_kind], "dxs", STATES[_kind]),
        group="recurrent", examples=recurrent_edges(_kind)))

register(Component("Embedding", semb.Embedding, temb.Embedding, inputs("embedding_case"),
                   native=lambda W, idx: F.embedding(idx, W), params=("W",), grad_args=(),
                   run_scratch=layer_scratch_runner(semb.Embedding, ("W",), None),
                   group="recurrent",      # a repeated index sums a non-finite dout's rows
                   examples=(Case((np.array([[0, 2, 0], [1, 1, 2]]),),
                                  (np.vstack([ROW, ROW[:, ::-1], np.ones((1, 6))]),),
                                  dout_edges=True),)))
register(Component("TimeAffine", stl.TimeAffine, ttl.TimeAffine, inputs("time_affine_case"),
                   native=lambda W, b, xs: F.linear(xs, W.T, b), params=("W", "b"),
                   group="recurrent", examples=(
                       Case((ROW.reshape(1, 3, 2),), (np.array([[1.0, -0.5], [2.0, 0.5]]),
                                                      np.array([0.0, 1.0])), dout_edges=True),)))
register(Component("TimeSoftmaxWithLoss", stl.TimeSoftmaxWithLoss, ttl.TimeSoftmaxWithLoss,
                   inputs("time_targets_case"), group="recurrent",
                   examples=TIME_TARGETS_EDGES,
                   native=lambda ignore, xs, ts: F.cross_entropy(
                       xs.reshape(-1, xs.shape[-1]), ts.reshape(-1), ignore_index=ignore)))


# ---- clip_grads: forward compares the norm and every clipped gradient, as one vector ----------

def clip_grads_scratch(*grads: np.ndarray, max_norm: float) -> np.ndarray:
    """``scratch.optim.clip_grads`` on copies; returns [norm, clipped grads flattened]."""
    grads = {str(i): g.copy() for i, g in enumerate(grads)}
    norm = so.clip_grads(grads, max_norm)
    return np.concatenate([[norm], *(g.ravel() for g in grads.values())]).astype(norm.dtype)


def clip_grads_torch(*grads: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``torchref.optim.clip_grads`` on clones; the same vector."""
    grads = {str(i): g.detach().clone() for i, g in enumerate(grads)}
    norm = to.clip_grads(grads, max_norm)
    return torch.cat([norm.reshape(1), *(g.reshape(-1) for g in grads.values())])


def clip_grads_native(*grads: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` on parameters whose ``.grad`` are the drawn arrays."""
    params = []
    for g in grads:
        p = torch.zeros_like(g, requires_grad=True)
        p.grad = g.detach().clone()
        params.append(p)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.cat([norm.reshape(1), *(p.grad.reshape(-1) for p in params)])


register(Component("clip_grads", clip_grads_scratch, clip_grads_torch, inputs("clip_grads_case"),
                   native=clip_grads_native, group="optimizers", examples=tuple(
                       Case((np.array([[1.0, v], [0.5, -2.0]]), np.array([3.0, 0.0])),
                            kwargs={"max_norm": 1.0}) for v in (inf, -inf, nan)),
                   skip={"backward": "clipping acts on gradients; it is not differentiated"}))


# ---- the sequence classifier, in its three cells ------------------------------------------------

def _seq_classifier(case: Case) -> Any:
    kwargs, seed = case.init
    return sms.LSTMClassifier(**kwargs, seed=seed, dtype=case.args[0].dtype)


_seq_scratch, _seq_torch = model_runners(_seq_classifier, tms.LSTMClassifier)
for _cell in ("lstm", "gru", "rnn"):
    register(Component(f"LSTMClassifier({_cell})", sms.LSTMClassifier, tms.LSTMClassifier,
                       inputs("lstm_classifier_case", cell=_cell), run_scratch=_seq_scratch,
                       run_torch=_seq_torch, group="models", examples=(
                           Case((np.array([[[inf, 0.5], [0.5, 1.0]], [[0.5, -1.0], [nan, 0.0]],
                                           [[0.5, 1.0], [0.0, 0.5]]]), np.array([0, 1, 1])),
                                ({"input_size": 2, "hidden_size": 2, "output_size": 2,
                                  "cell": _cell}, 0)),)))
