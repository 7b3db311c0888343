"""The parity harness: "scratch and torch agree, forward and backward", as one check.

A ``Component`` describes one thing once (the OpInfo idea): its scratch side (a
NumPy function or a layer class with a hand-written ``backward``), its torch
side (a ``torchref`` function or ``nn.Module`` class, differentiated by
autograd), an optional native torch reference, and an input maker (a function
``dtype -> hypothesis strategy`` of ``Case``).  ``check_case`` runs both sides
on one input and compares every output and every gradient with the one
tolerance policy (``torchref.tolerance.assert_close``); ``run_parity`` lets
hypothesis draw the inputs, records the largest errors, and on a failure
shrinks to the smallest failing input.  The parity tests and
``python -m torchref.report`` both call ``run_parity``: a red report is a red
test.  A user's own parity test is one call::

    def test_leaky_relu(parity):                    # the fixture of the torchref pytest plugin
        parity(scratch.leaky_relu.LeakyRelu, torchref.leaky_relu.LeakyRelu,
               S.leaky_relu_case, native=lambda slope, x: F.leaky_relu(x, slope))

What is compared, for one drawn ``Case(args, init, kwargs)``:

* forward: ``scratch(*args, **kwargs)`` (a layer: ``Layer(*init).forward(*args)``)
  against the torch side and the native reference, run on tensors on the device;
* backward: with the same upstream gradient ``dout`` (standard normal, from a
  drawn seed; with ``Case.dout_edges`` about a third of its entries are +inf, -inf
  or NaN) on both sides, the scratch backward (a layer's ``backward(dout)``
  and its ``d<param>`` attributes, or a function's hand-derived
  vector-Jacobian product ``backward(dout, *args)``) against autograd's;
* the conventions: the scratch side leaves its inputs and ``dout`` unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from torchref.device import available_devices
from torchref.parity_stats import DIRECTIONS as DIRECTIONS  # re-export
from torchref.parity_stats import Comparison as Comparison  # re-export
from torchref.parity_stats import DirectionStats as DirectionStats  # re-export
from torchref.parity_stats import ParityStats as ParityStats  # re-export
from torchref.tolerance import assert_close, divergence_notes, first_difference, tolerance

Sides = tuple[dict[str, Any], dict[str, Any]]   # (forward outputs, gradients), keyed by name


@dataclass(frozen=True)
class Case:
    """One input: forward ``args``, a layer's constructor ``init`` args, shared ``kwargs``;
    ``dout_edges``: the upstream gradient holds non-finite values (see ``_dout``)."""

    args: tuple
    init: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    dout_edges: bool = False


@dataclass(frozen=True)
class Component:
    """One row of the components table.  See the module docstring.

    ``backward``: for a scratch *function*, its hand-derived vector-Jacobian
    product ``(dout, *args, **kwargs) -> gradient(s)`` of the args in
    ``grad_args``.  ``params``: a layer's parameter names, in the order of its
    ``init`` args (compared as ``d<name>``).  ``skip``: direction -> reason
    (also ``"nonfinite"`` -> why no non-finite edge is pinned, see ``torchref.tolerance``).
    ``run_scratch(case, dout_seed)`` / ``run_torch(case, device, dout_seed)``
    replace the generic runners for a model (both return ``Sides``).
    ``examples``: cases always checked first (hypothesis's ``@example``: pinned edges).
    """

    name: str
    scratch: Any
    torch: Any
    inputs: Callable[[Any], st.SearchStrategy] | st.SearchStrategy
    native: Callable | None = None
    backward: Callable | None = None
    grad_args: tuple[int, ...] = (0,)
    params: tuple[str, ...] = ()
    dtypes: tuple = (np.float32, np.float64)
    skip: Mapping[str, str] = field(default_factory=dict)
    run_scratch: Callable[[Case, int], Sides] | None = None
    run_torch: Callable[[Case, torch.device, int], Sides] | None = None
    group: str = ""
    examples: tuple[Case, ...] = ()

    def strategy(self, dtype: Any) -> st.SearchStrategy:
        """The cases to draw for ``dtype`` (a plain strategy is used for every dtype)."""
        if isinstance(self.inputs, st.SearchStrategy):
            return self.inputs
        return self.inputs(dtype)


# ---- running one side ---------------------------------------------------------------------

def _names(fn: Callable, n: int) -> list[str]:
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]
    return [params[i].name if i < len(params) else f"arg{i}" for i in range(n)]


def _is_layer(obj: Any) -> bool:
    return inspect.isclass(obj)


EDGE_VALUES = (np.inf, -np.inf, np.nan)


def _dout(out: np.ndarray, seed: int, edges: bool = False) -> np.ndarray:
    """The upstream gradient: standard normal from ``seed``; with ``edges``, each entry is
    replaced with probability 1/3 by +inf, -inf or NaN (chosen from the same seed)."""
    out = np.asarray(out)
    rng = np.random.default_rng(seed)
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    if edges:
        pick = rng.integers(0, 3 * len(EDGE_VALUES), out.shape)
        for i, v in enumerate(EDGE_VALUES):
            dout[pick == i] = v
    return dout


def _tensor(value: Any, device: torch.device, grad: bool = False) -> Any:
    if not isinstance(value, np.ndarray):
        return value                        # Python scalars (hyper-parameters) as they are
    t = torch.from_numpy(value.copy()).to(device)
    return t.requires_grad_(True) if grad and t.is_floating_point() else t


def _run_scratch(c: Component, case: Case, dout_seed: int, want_grads: bool) -> Sides:
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args)
    if _is_layer(c.scratch):
        layer = c.scratch(*(a.copy() if isinstance(a, np.ndarray) else a for a in case.init))
        out = layer.forward(*args, **case.kwargs)
        names = _names(c.scratch.forward, len(args))
    else:
        out = c.scratch(*args, **case.kwargs)
        names = _names(c.scratch, len(args))
    _unchanged("forward", case.args, args, names)
    if not want_grads:
        return {"out": out}, {}
    dout = _dout(out, dout_seed, case.dout_edges)
    dout_before = dout.copy()
    if _is_layer(c.scratch):
        grads = [layer.backward(dout)]
        extra = {f"d{p}": getattr(layer, f"d{p}") for p in c.params}
    else:
        g = c.backward(dout, *args, **case.kwargs)
        grads, extra = (list(g) if isinstance(g, tuple | list) else [g]), {}
    if not np.array_equal(dout, dout_before, equal_nan=True):
        raise AssertionError("backward modified its argument dout in place")
    return {"out": out}, {**{f"d{names[i]}": g for i, g in zip(c.grad_args, grads, strict=True)},
                          **extra}


def _unchanged(where: str, before: Sequence, after: Sequence, names: Sequence[str]) -> None:
    for name, b, a in zip(names, before, after, strict=False):
        if isinstance(b, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(f"{where} modified its argument {name} in place")


def _run_torch(c: Component, fn: Any, case: Case, device: torch.device, dout_seed: int,
               native: bool, want_grads: bool) -> Sides:
    args = [_tensor(a, device, want_grads and i in c.grad_args) for i, a in enumerate(case.args)]
    init = [_tensor(a, device, native and want_grads and i < len(c.params))
            for i, a in enumerate(case.init)]
    names = _names(c.scratch.forward if _is_layer(c.scratch) else c.scratch, len(args))
    with torch.enable_grad():
        if native:
            out = fn(*init, *args, **case.kwargs)
        elif _is_layer(fn):
            module = fn(*init)
            out = module(*args, **case.kwargs)
        else:
            out = fn(*args, **case.kwargs)
        if not want_grads:
            return {"out": out}, {}
        dout = torch.from_numpy(_dout(out.detach().cpu().numpy(), dout_seed,
                                      case.dout_edges)).to(device)
        out.backward(dout)
    grads = {f"d{names[i]}": args[i].grad for i in c.grad_args}
    for i, p in enumerate(c.params):
        if native:
            grads[f"d{p}"] = init[i].grad
        else:
            grads[f"d{p}"] = getattr(module, f"d{p}", None)
            if grads[f"d{p}"] is None:
                grads[f"d{p}"] = getattr(module, p).grad
    return {"out": out}, grads


# ---- comparing ------------------------------------------------------------------------------

def _compare(direction: str, quantity: str, reference: str, actual: Any, expected: Any,
             where: str) -> Comparison:
    """torch side (actual) vs scratch side (expected) under the policy for expected's dtype."""
    label = f"{where} {direction} {quantity}: {reference} vs scratch"
    if actual is None:
        return Comparison(direction, quantity, reference, np.inf, np.inf, np.inf, False,
                          f"{label}: the torch side produced no value (no gradient?)")
    a = actual.detach().cpu() if isinstance(actual, torch.Tensor) else torch.as_tensor(actual)
    e = torch.from_numpy(np.array(expected, copy=True))
    tol = tolerance(e.dtype)
    if a.shape == e.shape:
        a64, e64 = a.double(), e.double()
        same = (a64 == e64) | (a64.isnan() & e64.isnan())     # NaN positions compare equal
        diff = torch.where(same, torch.zeros_like(a64), (a64 - e64).abs())
        rel = torch.where(diff == 0, torch.zeros_like(diff), diff / e64.abs())
        ratio = torch.where(same, torch.zeros_like(diff),
                            diff / (tol.atol + tol.rtol * e64.abs()))
        stats = [float(v.max()) if v.numel() else 0.0 for v in (diff, rel, ratio)]
        stats = [np.inf if np.isnan(v) else v for v in stats]
    else:
        stats = [np.inf] * 3
    try:
        assert_close(a, e, msg=label)
    except AssertionError as exc:
        first = first_difference(a, e)
        msg = f"{label}: {first}\n{exc}" if first else str(exc)
        return Comparison(direction, quantity, reference, *stats, False, msg)
    return Comparison(direction, quantity, reference, *stats, True)



def check_case(c: Component, case: Case, device: torch.device | str,
               dout_seed: int = 0) -> list[Comparison]:
    """Run every side of ``c`` on one ``case`` and compare: the check behind tests and report."""
    device = torch.device(device)
    where = f"{c.name} [{device.type}]"
    active = [d for d in DIRECTIONS if d not in c.skip]
    want_grads = "backward" in active

    def failed(reference: str, exc: Exception) -> list[Comparison]:
        msg = f"{where}: the {reference} side raised {type(exc).__name__}: {exc}"
        return [Comparison(d, "error", reference, np.inf, np.inf, np.inf, False, msg)
                for d in active]

    try:
        # NumPy warns on inf - inf, 0 * inf, ...: the comparison, not a warning, judges them
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            ours = (c.run_scratch(case, dout_seed) if c.run_scratch
                    else _run_scratch(c, case, dout_seed, want_grads))
    except Exception as exc:        # a raising side is a failed comparison, not a crash
        return failed("scratch", exc)
    sides: list[tuple[str, Any, bool]] = [("torchref", c.torch, False)]
    if c.native is not None:
        sides.append(("native", c.native, True))
    out: list[Comparison] = []
    for reference, fn, native in sides:
        try:
            theirs = (c.run_torch(case, device, dout_seed) if c.run_torch and not native
                      else _run_torch(c, fn, case, device, dout_seed, native, want_grads))
        except Exception as exc:
            out += failed(reference, exc)
            continue
        for d, mine, their in zip(DIRECTIONS, ours, theirs, strict=True):
            if d in active:
                out += [_compare(d, k, reference, their.get(k), v, where) for k, v in mine.items()]
    if native_failed := [x for x in out if x.reference == "native" and not x.passed]:
        notes = "\n".join(divergence_notes(c.name, c.native))
        for x in native_failed if notes else ():
            x.message += "\n" + notes
    return out


# ---- running many cases ---------------------------------------------------------------------

def report_settings(max_examples: int) -> settings:
    """Deterministic settings for a run outside pytest (the report): same examples every time."""
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    print_blob=False, suppress_health_check=list(HealthCheck),
                    phases=[p for p in Phase if p != Phase.explain])


def _as_dtype(case: Case, dtype: Any) -> Case:
    """``case`` with its floating arrays cast to ``dtype`` (None: as they are)."""
    def cast(v: Any) -> Any:
        is_float = isinstance(v, np.ndarray) and v.dtype.kind == "f"
        return v.astype(dtype) if is_float and dtype is not None else v
    return Case(tuple(map(cast, case.args)), tuple(map(cast, case.init)),
                {k: cast(v) for k, v in case.kwargs.items()}, case.dout_edges)


def _dtype_name(dtype: Any) -> str:
    return "drawn" if dtype is None else np.dtype(dtype).name


def run_parity(c: Component, device: torch.device | str, dtype: Any,
               hypothesis_settings: settings | None = None,
               raise_on_failure: bool = False) -> ParityStats:
    """Draw cases of ``dtype`` with hypothesis and check each on ``device``.

    Records the largest errors per direction over every example tried; on a
    failure hypothesis shrinks to the smallest failing case, which
    ``stats.failure`` names (or which is raised, with ``raise_on_failure``).
    Uses the active hypothesis profile unless ``hypothesis_settings`` is given.
    """
    __tracebackhide__ = True
    device = torch.device(device)
    stats = ParityStats(c.name, device.type, _dtype_name(dtype))
    for d, reason in c.skip.items():
        if d in stats.directions:           # (a "nonfinite" skip: no pinned non-finite edges)
            stats.directions[d].skipped = reason

    failing: list[str] = []     # the last failing input: hypothesis replays the shrunk one last

    @given(case=c.strategy(dtype), dout_seed=st.integers(0, 2**32 - 1))
    def parity_check(case: Case, dout_seed: int) -> None:
        __tracebackhide__ = True        # pytest shows the message, not the harness's frames
        comparisons = check_case(c, case, device, dout_seed)
        stats.record(comparisons)
        bad = [x for x in comparisons if not x.passed]
        if bad:
            failing[:] = [f"{case!r}, dout_seed={dout_seed}"]
            raise AssertionError("\n".join(dict.fromkeys(x.message for x in bad)))

    for edge in c.examples:     # pinned edges, in the dtype under test
        parity_check = example(case=_as_dtype(edge, dtype), dout_seed=0)(parity_check)

    # the active profile (the suite's ci/dev/thorough), never a deadline: the first
    # example pays for torch's and hypothesis's warm-up
    # (and no explain phase: the lines it would list are the harness's own)
    parity_check = (hypothesis_settings or settings(
        settings.default, deadline=None,
        phases=[p for p in settings.default.phases if p != Phase.explain]))(parity_check)
    try:
        parity_check()
    except Exception as exc:
        notes = "\n".join(getattr(exc, "__notes__", []))
        shrunk = f"shrunk failing input: {failing[0]}\n" if failing else ""
        stats.failure = f"{shrunk}{type(exc).__name__}: {exc}\n{notes}".strip()
        for s in stats.directions.values():
            if s.passed and not s.skipped and not s.compared:
                s.passed, s.failure = False, stats.failure
        if raise_on_failure:
            raise
    return stats


def assert_parity(scratch_fn_or_layer: Any, torch_fn_or_module: Any,
                  inputs_strategy: Callable[[Any], st.SearchStrategy] | st.SearchStrategy,
                  *, native: Callable | None = None, backward: Callable | None = None,
                  params: tuple[str, ...] = (), grad_args: tuple[int, ...] = (0,),
                  skip: Mapping[str, str] | None = None, device: torch.device | str | None = None,
                  dtypes: Sequence[Any] = (np.float32, np.float64), name: str | None = None,
                  component: Component | None = None) -> list[ParityStats]:
    """Assert that scratch and torch agree, forward and backward, on every drawn input.

    Builds a ``Component`` from the arguments (or takes ``component``) and runs
    ``run_parity`` on ``device`` (every device present when None) for every
    dtype (the strategy maker is called with each; a plain strategy runs once).
    A failure raises hypothesis's shrunk counterexample with the policy's message.
    """
    __tracebackhide__ = True
    if component is None:
        component = Component(
            name or getattr(scratch_fn_or_layer, "__name__", "component"), scratch_fn_or_layer,
            torch_fn_or_module, inputs_strategy, native=native, backward=backward,
            grad_args=grad_args, params=params, skip=dict(skip or {}))
    if not _is_layer(component.scratch) and component.backward is None \
            and "backward" not in component.skip and component.run_scratch is None:
        raise ValueError(f"backward: {component.name} is a function: give its hand-derived "
                         f"vector-Jacobian product backward(dout, *args), or skip={{'backward': "
                         f"'<reason>'}}")
    devices = available_devices() if device is None else [torch.device(device)]
    dts = [None] if isinstance(component.inputs, st.SearchStrategy) else list(dtypes)
    return [run_parity(component, dev, dt, raise_on_failure=True) for dev in devices for dt in dts]
