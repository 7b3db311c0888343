"""TimeRNN, TimeLSTM, TimeGRU: central differences, stateful BPTT, non-finite inputs, errors.

Forward and backward parity with the mirrors and the native modules, float32
and float64, every device, is the components table's (``TimeRNN`` ... rows of
``parity_tests/test_components.py``); this file checks what the table cannot.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import scratch.rnn as srnn
import torchref.convert as cv
import torchref.rnn as trnn
from scratch.gradient import gradcheck
from torchref.components import COMPONENTS
from torchref.parity import Case, check_case
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

KINDS = ("RNN", "LSTM", "GRU")
STATES = {"RNN": ("h0",), "LSTM": ("h0", "c0"), "GRU": ("h0",)}
PARAMS = {"RNN": ("Wx", "Wh", "b"), "LSTM": ("Wx", "Wh", "b"), "GRU": ("Wx", "Wh", "bx", "bh")}


def scratch_layer(kind: str, params: tuple, **kwargs: object) -> object:
    return getattr(srnn, f"Time{kind}")(*(p.copy() for p in params), **kwargs)


def torch_layer(kind: str, params: tuple, device: torch.device | str = "cpu",
                **kwargs: object) -> torch.nn.Module:
    return getattr(trnn, f"Time{kind}")(*(torch.from_numpy(p).to(device) for p in params),
                                        **kwargs)


def long_case(kind: str) -> Case:
    """T = 50, H = 5 > D = 2, batch 1 (pinned: BPTT through many steps)."""
    rng = np.random.default_rng(1)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    params = [rng.uniform(-0.5, 0.5, s) for s in ((2, 5 * G), (5, 5 * G))]
    params += [rng.uniform(-0.5, 0.5, 5 * G) for _ in PARAMS[kind][2:]]
    states = [rng.uniform(-1, 1, (1, 5)) for _ in STATES[kind]]
    return Case((rng.uniform(-2, 2, (1, 50, 2)), *states), tuple(params))


def edge_case(kind: str, N: int, T: int, D: int, H: int, dtype: type) -> Case:
    rng = np.random.default_rng(N * 1000 + T * 10 + H)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    k = 1 / np.sqrt(H)
    params = [rng.uniform(-k, k, s).astype(dtype) for s in ((D, G * H), (H, G * H))]
    params += [rng.uniform(-1, 1, G * H).astype(dtype) for _ in PARAMS[kind][2:]]
    states = [rng.uniform(-1, 1, (N, H)).astype(dtype) for _ in STATES[kind]]
    return Case((rng.uniform(-3, 3, (N, T, D)).astype(dtype), *states), tuple(params))


EDGES = {"T=1, batch 1, D=H=1": (1, 1, 1, 1), "T=50, batch 1, H=5 > D=2": (1, 50, 2, 5),
         "T=1, hidden 1 < D=4": (3, 1, 4, 1), "T=60, H=8 > D=1": (2, 60, 1, 8)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edge", list(EDGES))
def test_pinned_edges_through_the_table(kind: str, dtype: type, edge: str,
                                        device: torch.device) -> None:
    """The table's check (mirror and native nn module, forward and every gradient) on the
    shapes the issue names, pinned rather than left to the draw."""
    comparisons = check_case(COMPONENTS[f"Time{kind}"], edge_case(kind, *EDGES[edge], dtype),
                             device, dout_seed=3)
    assert len(comparisons) >= 2 * (2 + len(STATES[kind]) + len(PARAMS[kind]))
    bad = [c.message for c in comparisons if not c.passed]
    assert not bad, "\n".join(bad)


# ---- central differences in float64: dxs, every state and every parameter ---------------------

@pytest.mark.parametrize("kind", KINDS)
def test_backprop_through_time_vs_central_differences(kind: str) -> None:
    @given(case=S.rnn_case(np.float64, kind=kind, max_n=2, max_d=3, max_h=3,
                           nonfinite=False),
           seed=S.seeds)
    @example(case=long_case(kind), seed=0)
    def check(case: Case, seed: int) -> None:
        names = ("xs", *STATES[kind], *PARAMS[kind])
        arrays = dict(zip(names, (*case.args, *case.init), strict=True))
        N, T, _ = case.args[0].shape
        v = np.random.default_rng(seed).standard_normal((N, T, case.init[1].shape[0]))

        def f(**a: np.ndarray) -> float:
            layer = scratch_layer(kind, tuple(a[p] for p in PARAMS[kind]))
            return float(np.sum(v * layer.forward(a["xs"], *(a[s] for s in STATES[kind]))))

        def grads(**a: np.ndarray) -> dict:
            layer = scratch_layer(kind, tuple(a[p] for p in PARAMS[kind]))
            layer.forward(a["xs"], *(a[s] for s in STATES[kind]))
            out = {"xs": layer.backward(v)}
            out.update({s: getattr(layer, f"d{s}") for s in STATES[kind]})
            out.update({p: getattr(layer, f"d{p}") for p in PARAMS[kind]})
            return out
        gradcheck(f, arrays, grads, fast=arrays["xs"].shape[1] > 10, seed=seed,
                  n_directions=3).raise_if_failed()
    check()


# ---- stateful: truncated BPTT over chunks equals one long forward -----------------------------

@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_stateful_chunks_continue_the_sequence(kind: str, data: st.DataObject,
                                               device: torch.device) -> None:
    case = data.draw(S.rnn_case(np.float64, kind=kind, nonfinite=False))
    xs, T = case.args[0], case.args[0].shape[1]
    cut = data.draw(st.integers(0, T))
    whole = scratch_layer(kind, case.init).forward(xs)
    ours = scratch_layer(kind, case.init, stateful=True)
    theirs = torch_layer(kind, case.init, device, stateful=True)
    pieces, tpieces = [], []
    for chunk in (xs[:, :cut], xs[:, cut:]):
        if chunk.shape[1] == 0:
            continue
        pieces.append(ours.forward(chunk))
        dhs = np.ones_like(pieces[-1])
        ours.backward(dhs)
        tpieces.append(theirs(torch.from_numpy(chunk).to(device)))
        tpieces[-1].backward(torch.from_numpy(dhs).to(device))
        assert_close(theirs.dh0, ours.dh0, msg="dh0 of a chunk (the carried state's gradient)")
        assert_close(theirs.dWh, ours.dWh, msg="dWh of a chunk")
        theirs.zero_grad()
    assert_close(np.concatenate(pieces, axis=1), whole, msg="stateful chunks vs one sequence")
    assert_close(torch.cat(tpieces, dim=1), whole, msg="torch stateful chunks vs one sequence")
    ours.reset_state()
    theirs.reset_state()
    assert_close(ours.forward(xs), whole, msg="after reset_state")
    assert_close(theirs(torch.from_numpy(xs).to(device)), whole, msg="torch after reset_state")


@pytest.mark.parametrize("kind", KINDS)
def test_no_initial_state_is_zeros_and_a_given_one_wins(kind: str) -> None:
    case = long_case(kind)
    xs, states = case.args[0], case.args[1:]
    zeros = [np.zeros_like(s) for s in states]
    layer = scratch_layer(kind, case.init, stateful=True)
    np.testing.assert_array_equal(layer.forward(xs), scratch_layer(kind, case.init).forward(
        xs, *zeros))
    # the carried state is ignored when one is given
    np.testing.assert_array_equal(layer.forward(xs, *states),
                                  scratch_layer(kind, case.init).forward(xs, *states))


# ---- non-finite inputs: torch propagates inf/nan through the same IEEE operations ------------

def assert_same_nonfinite(actual: torch.Tensor, expected: np.ndarray, what: str) -> None:
    a = actual.detach().cpu().numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(expected), err_msg=f"{what}: nan")
    np.testing.assert_array_equal(np.isinf(a) * np.sign(a), np.isinf(expected) *
                                  np.sign(expected), err_msg=f"{what}: +-inf")
    finite = np.isfinite(expected)
    # Each entry of a weight gradient is a sum over the N*T steps of backprop through time,
    # whose rounding is relative to the largest entries of the array, not to the entry itself:
    # compare at the array's scale (torchref.tolerance, "Recurrent layers over many steps").
    scale = max(1.0, float(np.abs(expected[finite]).max(initial=0.0)))
    assert_close(torch.from_numpy(a[finite] / scale), expected[finite] / scale, msg=what)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_non_finite_inputs_like_torch(kind: str, dtype: type, data: st.DataObject,
                                      device: torch.device) -> None:
    case = data.draw(S.rnn_case(dtype, kind=kind, nonfinite=False))
    N, T, D = case.args[0].shape
    xs = data.draw(S.nonfinite_sequence(dtype, N, T, D))
    ours = scratch_layer(kind, case.init)
    theirs = torch_layer(kind, case.init, device)
    with np.errstate(invalid="ignore", over="ignore"):
        hs = ours.forward(xs, *case.args[1:])
        dhs = np.ones_like(hs)
        dxs = ours.backward(dhs)
    xt = torch.from_numpy(xs).to(device).requires_grad_(True)
    hst = theirs(xt, *(torch.from_numpy(s).to(device) for s in case.args[1:]))
    hst.backward(torch.from_numpy(dhs).to(device))
    assert_same_nonfinite(hst, hs, "hs")
    assert_same_nonfinite(xt.grad, dxs, "dxs")
    for p in PARAMS[kind]:
        assert_same_nonfinite(getattr(theirs, f"d{p}"), getattr(ours, f"d{p}"), f"d{p}")


# ---- conversion: torch's two biases, the transposes -------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_native_module_round_trip(kind: str) -> None:
    torch.manual_seed(0)
    native = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind](
        3, 4, batch_first=True, dtype=torch.float64)          # torch's random b_ih and b_hh
    layer = cv.recurrent_layer_from_native(native)
    xs = np.random.default_rng(0).standard_normal((2, 7, 3))
    hs_native, _ = native(torch.from_numpy(xs))
    assert_close(hs_native, layer.forward(xs), msg="scratch layer of a native module")
    back = cv.recurrent_to_native(layer)
    assert torch.all(back.bias_hh_l0 == 0) or kind == "GRU"
    assert_close(back(torch.from_numpy(xs))[0], layer.forward(xs), msg="native from scratch")
    mirror = cv.recurrent_to_torch(layer)
    assert_close(mirror(torch.from_numpy(xs)), layer.forward(xs), msg="mirror from scratch")
    again = cv.recurrent_to_scratch(mirror)
    for p in PARAMS[kind]:
        np.testing.assert_array_equal(getattr(again, p), getattr(layer, p))


def test_a_two_layer_module_is_refused() -> None:
    with pytest.raises(ValueError, match="module: expected one layer"):
        cv.recurrent_layer_from_native(torch.nn.LSTM(2, 3, num_layers=2))


# ---- bad input: one ValueError, naming the argument, the same message on both sides -----------

def _params(kind: str, D: int = 2, H: int = 3) -> tuple:
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    rng = np.random.default_rng(0)
    return (rng.standard_normal((D, G * H)), rng.standard_normal((H, G * H)),
            *(rng.standard_normal(G * H) for _ in PARAMS[kind][2:]))


BAD_CALLS = [
    ("xs", lambda p: (np.zeros((2, 4)),), "xs: expected shape (N, T, 2)"),
    ("xs", lambda p: (np.zeros((2, 4, 3)),), "xs: expected shape (N, T, 2)"),
    ("xs", lambda p: (np.zeros((2, 0, 2)),), "with N >= 1 and T >= 1"),
    ("h0", lambda p: (np.zeros((2, 4, 2)), np.zeros((2, 4))), "h0: expected shape (2, 3)"),
    ("h0", lambda p: (np.zeros((2, 4, 2)), np.zeros((1, 3))), "h0: expected shape (2, 3)"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "args", "message"), BAD_CALLS)
def test_bad_inputs_same_message(kind: str, name: str, args, message: str) -> None:
    params = _params(kind)
    a = args(params)
    with pytest.raises(ValueError, match=r"^" + name) as ours:
        scratch_layer(kind, params).forward(*a)
    with pytest.raises(ValueError) as theirs:
        torch_layer(kind, params)(*(torch.from_numpy(x) for x in a))
    assert message in str(ours.value)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_bad_parameters_same_message(kind: str, which: int) -> None:
    params = list(_params(kind))
    params[which] = params[which][..., :-1]          # one column / entry short
    name = PARAMS[kind][which]
    with pytest.raises(ValueError, match=f"^{name}: expected shape") as ours:
        scratch_layer(kind, tuple(params))
    with pytest.raises(ValueError) as theirs:
        torch_layer(kind, tuple(params))
    assert str(ours.value) == str(theirs.value)


def test_c0_of_wrong_size_and_a_stateful_batch_change() -> None:
    params = _params("LSTM")
    xs = np.zeros((2, 4, 2))
    for layer, conv in ((scratch_layer("LSTM", params), np.asarray),
                        (torch_layer("LSTM", params), torch.from_numpy)):
        with pytest.raises(ValueError, match=r"^c0: expected shape \(2, 3\)"):
            layer(conv(xs), None, conv(np.zeros((2, 2)))) if isinstance(
                layer, torch.nn.Module) else layer.forward(xs, None, np.zeros((2, 2)))
    for layer in (scratch_layer("GRU", _params("GRU"), stateful=True),
                  torch_layer("GRU", _params("GRU"), stateful=True)):
        call = layer.forward if not isinstance(layer, torch.nn.Module) else (
            lambda x, m=layer: m(torch.from_numpy(x)))
        call(xs)
        with pytest.raises(ValueError, match="h0: the state carried by stateful=True"):
            call(np.zeros((3, 4, 2)))
        layer.reset_state()
        call(np.zeros((3, 4, 2)))


def test_backward_before_forward_and_a_wrong_dhs() -> None:
    layer = scratch_layer("LSTM", _params("LSTM"))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((1, 1, 3)))
    layer.forward(np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"^dout: expected shape \(2, 4, 3\)"):
        layer.backward(np.zeros((2, 4, 2)))


@settings(max_examples=10)
@given(n=st.integers(1, 3), h=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_cell_steps_match_their_mirrors(n: int, h: int, seed: int) -> None:
    """One step of each cell: scratch.rnn's lesson functions equal torchref.rnn's (float64)."""
    s, t = srnn, trnn
    rng = np.random.default_rng(seed)
    T = torch.from_numpy
    h_prev, c_prev = rng.normal(size=(n, h)), rng.normal(size=(n, h))
    for k, name in ((1, "rnn"), (4, "lstm"), (3, "gru")):
        xw, Wh = rng.normal(size=(n, k * h)), rng.normal(size=(h, k * h))
        bh = rng.normal(size=k * h)
        if name == "rnn":
            pairs = [(s.rnn_step(xw, h_prev, Wh), t.rnn_step(T(xw), T(h_prev), T(Wh)))]
        elif name == "lstm":
            pairs = zip(s.lstm_step(xw, h_prev, c_prev, Wh),
                        t.lstm_step(T(xw), T(h_prev), T(c_prev), T(Wh)), strict=True)
        else:
            pairs = zip(s.gru_step(xw, h_prev, Wh, bh), t.gru_step(T(xw), T(h_prev), T(Wh), T(bh)),
                        strict=True)
        for a, b in pairs:
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


# ---- an infinite upstream gradient through the GRU's update (scratch follows torch) ----------

def test_gru_infinite_dh_gives_torchs_nan_through_n_plus_z_times_h_minus_n() -> None:
    """h = n + z (h_{t-1} - n): autograd sends dh to n twice, ``dh - z dh``, which is NaN
    for an infinite dh (inf - inf); the folded ``dh (1 - z)`` would give inf."""
    zeros = np.zeros
    params = (zeros((1, 3)), zeros((1, 3)), zeros(3), zeros(3))
    ours = scratch_layer("GRU", params)
    ours.forward(zeros((1, 1, 1)), zeros((1, 1)))
    ours.backward(np.full((1, 1, 1), -np.inf))
    theirs = torch.nn.GRU(1, 1, batch_first=True, dtype=torch.float64)
    for p in theirs.parameters():
        torch.nn.init.zeros_(p)
    hs, _ = theirs(torch.zeros(1, 1, 1, dtype=torch.float64), torch.zeros(1, 1, 1,
                                                                          dtype=torch.float64))
    hs.backward(torch.full((1, 1, 1), -np.inf, dtype=torch.float64))
    expected = theirs.bias_ih_l0.grad.numpy()
    assert np.isnan(expected).all()             # torch: NaN in every gate's bias gradient
    np.testing.assert_array_equal(ours.dbx, expected)
