"""Is a hand-derived gradient right?  ``gradcheck`` compares it with central
differences in float64, the way ``torch.autograd.gradcheck`` checks autograd
formulas.  (Exported as ``scratch.gradient.gradcheck``.)

Full mode perturbs every entry of every input: 2 evaluations of f per entry.
Fast mode (torch's ``fast_mode=True``, pytorch/pytorch#53876) checks the
gradient along random unit directions u instead: the directional derivative

    (f(x + eps u) - f(x - eps u)) / (2 eps)   ~   g . u

costs 2 evaluations per direction, whatever the size of x.  If every entry
passes ``|n_i - a_i| <= atol + rtol |a_i|``, then summing against u gives
``|n.u - a.u| <= atol ||u||_1 + rtol sum_i |u_i a_i|``; fast mode asks for
``|n.u - a.u| <= atol ||u||_1 + rtol |a.u|`` (torch's rule, a little
tighter in the rtol term).  A bug that moves many entries (a wrong sign, a
missing transpose, a dropped term) moves a.u by about its own size and is
caught; a wrong *single* entry of a large input is diluted by the atol
||u||_1 term, which is why the full mode exists.  When fast mode fails, the
failing input is re-checked in full to name the worst entry, as torch does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scratch._checks import check_positive


class GradcheckError(AssertionError):
    """A hand-derived gradient disagrees with central differences."""


@dataclass(frozen=True)
class GradcheckEntry:
    """One compared number: an entry (full mode) or a random direction (fast mode)."""

    input: str
    index: tuple[int, ...] | None   # None for a fast-mode direction
    numerical: float
    analytic: float
    error: float                    # |numerical - analytic|
    allowed: float                  # the tolerance this comparison had
    direction: int | None = None    # which random direction, in fast mode

    @property
    def ratio(self) -> float:
        """error / allowed: above 1 means this comparison failed."""
        return self.error / self.allowed if self.allowed > 0 else float(self.error > 0) * np.inf

    def describe(self) -> str:
        where = (f"index {self.index}" if self.index is not None
                 else f"random direction {self.direction}")
        return (f"input {self.input!r} {where}: numerical {self.numerical:.10g}, analytic "
                f"{self.analytic:.10g}, |error| {self.error:.3g} "
                f"{'>' if self.ratio > 1 else '<='} allowed {self.allowed:.3g}")


@dataclass
class GradcheckResult:
    """What ``gradcheck`` found; truthy when the gradient passed.

    ``worst`` is the comparison with the largest error / allowed ratio (on a
    fast-mode failure: the worst entry of the full re-check of the failing
    input).  ``n_evals`` counts forward passes (evaluations of f, including
    the one a layer or model runs before its backward), ``n_grad_evals``
    backward passes (calls of the analytic gradient).
    """

    passed: bool
    fast: bool
    worst: GradcheckEntry | None
    n_evals: int
    n_grad_evals: int
    n_checked: int
    eps: float
    atol: float
    rtol: float
    seed: int
    fast_failure: GradcheckEntry | None = None
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def message(self) -> str:
        head = "gradcheck passed" if self.passed else "gradcheck FAILED"
        mode = "fast (random directions)" if self.fast else "full (every entry)"
        lines = [f"{head}, {mode} mode, {self.n_checked} comparisons, {self.n_evals} "
                 f"evaluations of f, {self.n_grad_evals} of the analytic gradient"]
        if self.worst is not None:
            lines.append(("worst " if self.passed else "") + self.worst.describe())
        if self.fast_failure is not None and self.fast_failure is not self.worst:
            lines.append(f"(fast mode saw it along {self.fast_failure.describe()}; the entry "
                         f"above comes from a full re-check of that input)")
        lines.extend(self.notes)
        lines.append(f"(central differences in float64, eps={self.eps:g}; rule |error| <= "
                     f"atol + rtol*|analytic| with atol={self.atol:g}, rtol={self.rtol:g}"
                     f"{', atol scaled by ||u||_1 along a direction u' if self.fast else ''}; "
                     f"seed={self.seed})")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise ``GradcheckError`` with ``message()`` unless the check passed."""
        if not self.passed:
            raise GradcheckError(self.message())


def _float64_copy(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.array(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite values, got {arr.size - np.isfinite(arr).sum()}"
                         f" non-finite entries")
    return arr


def _scalar(name: str, value: ArrayLike) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{name}: expected a scalar output, got shape {arr.shape}; reduce an "
                         f"array output to a scalar, e.g. (f(x) * v).sum() with its gradient "
                         f"dout=v, or pass a layer (gradcheck draws v for you)")
    return float(arr.reshape(()))


def _grads_as_list(names: list[str], grads: Any) -> list[np.ndarray]:
    if isinstance(grads, Mapping):
        missing = [n for n in names if n not in grads]
        if missing:
            raise ValueError(f"analytic_grads: missing gradients for inputs {missing}")
        grads = [grads[n] for n in names]
    elif isinstance(grads, np.ndarray) or np.isscalar(grads):
        grads = [grads]
    grads = list(grads)
    if len(grads) != len(names):
        raise ValueError(f"analytic_grads: expected {len(names)} gradients (one per floating "
                         f"input {names}), got {len(grads)}")
    return [np.asarray(g, dtype=np.float64) for g in grads]


class _Problem:
    """What gradcheck perturbs (``arrays``, named ``names``) and how it evaluates f and g."""

    def __init__(self, names: list[str], arrays: list[np.ndarray], evaluate: Callable[[], float],
                 analytic: Callable[[], list[np.ndarray]], restore: Callable[[], None]) -> None:
        self.names, self.arrays, self._evaluate, self._analytic = names, arrays, evaluate, analytic
        self.restore = restore
        self.n_evals = self.n_grad_evals = 0
        self.forwards_per_gradient = 0      # forward passes the analytic side runs first
        self.backwards_per_gradient = 1     # 0 when the gradients were given as arrays

    def evaluate(self) -> float:
        self.n_evals += 1
        return self._evaluate()

    def analytic(self) -> list[np.ndarray]:
        self.n_grad_evals += self.backwards_per_gradient
        self.n_evals += self.forwards_per_gradient
        grads = self._analytic()
        for name, arr, g in zip(self.names, self.arrays, grads, strict=True):
            if g.shape != arr.shape:
                raise ValueError(f"analytic gradient of {name!r}: expected shape {arr.shape} "
                                 f"(the input's), got {g.shape}")
        return grads


def _function_problem(f: Callable, inputs: Any, analytic_grads: Any) -> _Problem:
    if isinstance(inputs, Mapping):
        keys, values = list(inputs), list(inputs.values())
    else:
        values = [inputs] if isinstance(inputs, np.ndarray) or np.isscalar(inputs) else list(inputs)
        keys = [f"inputs[{i}]" for i in range(len(values))]
    args: list[Any] = []
    names, arrays = [], []
    for key, value in zip(keys, values, strict=True):
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            arr = _float64_copy(key, value)
            names.append(key)
            arrays.append(arr)
            args.append(arr)
        else:
            args.append(value)              # labels and other constants
    if not arrays:
        raise ValueError("inputs: expected at least one floating-point array to differentiate")
    if analytic_grads is None:
        raise ValueError("analytic_grads: required when f is a function (only a layer with "
                         "forward/backward or a model with params/gradient brings its own)")

    def call(fn: Callable) -> Any:
        return fn(**dict(zip(keys, args, strict=True))) if isinstance(inputs, Mapping) \
            else fn(*args)

    def evaluate() -> float:
        return _scalar("f", call(f))

    def analytic() -> list[np.ndarray]:
        grads = call(analytic_grads) if callable(analytic_grads) else analytic_grads
        return _grads_as_list(names, grads)

    problem = _Problem(names, arrays, evaluate, analytic, lambda: None)
    problem.backwards_per_gradient = int(callable(analytic_grads))
    return problem


def _layer_params(layer: Any) -> list[str]:
    """Names p of a layer's parameters: array attributes with a same-shaped ``d<p>``."""
    attrs = vars(layer)
    return [name[1:] for name, value in attrs.items()
            if name.startswith("d") and isinstance(value, np.ndarray)
            and isinstance(attrs.get(name[1:]), np.ndarray)
            and attrs[name[1:]].shape == value.shape]


def _layer_problem(layer: Any, inputs: Any, rng: np.random.Generator) -> _Problem:
    """f = sum(v * layer.forward(x, *rest)) for a fixed random v; g = backward(v), d<param>."""
    values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    x, rest = _float64_copy("inputs[0]", values[0]), values[1:]
    out = np.asarray(layer.forward(x, *rest))
    v = rng.standard_normal(out.shape)
    layer.backward(v.copy())
    params = _layer_params(layer)
    saved = {p: getattr(layer, p) for p in params}
    for p in params:                        # float64 copies, perturbed in place, restored after
        setattr(layer, p, _float64_copy(p, saved[p]))
    names, arrays = ["x", *params], [x, *(getattr(layer, p) for p in params)]

    def evaluate() -> float:
        return float(np.sum(v * layer.forward(x, *rest)))

    def analytic() -> list[np.ndarray]:
        layer.forward(x, *rest)
        dx = layer.backward(v.copy())
        return [np.asarray(g, dtype=np.float64)
                for g in (dx, *(getattr(layer, "d" + p) for p in params))]

    def restore() -> None:
        for p, value in saved.items():
            setattr(layer, p, value)

    problem = _Problem(names, arrays, evaluate, analytic, restore)
    problem.n_evals = problem.n_grad_evals = problem.forwards_per_gradient = 1  # the first pass
    return problem


def _model_problem(model: Any, inputs: Any) -> _Problem:
    """f = model.loss(*inputs) as a function of ``model.params``; g = model.gradient(*inputs)."""
    args = list(inputs) if isinstance(inputs, tuple | list) else [inputs]
    names = list(model.params)
    for name in names:
        if model.params[name].dtype != np.float64:
            raise ValueError(f"model.params[{name!r}]: gradcheck needs float64 parameters "
                             f"(a perturbation of 1e-6 is lost in float32), got "
                             f"{model.params[name].dtype}; build the model with dtype=np.float64")
    arrays = [model.params[n] for n in names]   # perturbed in place: the layers share them
    saved = [a.copy() for a in arrays]

    def restore() -> None:
        for a, s in zip(arrays, saved, strict=True):
            a[...] = s

    problem = _Problem(names, arrays, lambda: _scalar("model.loss", model.loss(*args)),
                       lambda: _grads_as_list(names, model.gradient(*args)), restore)
    problem.forwards_per_gradient = 1       # gradient() runs the loss forward first
    return problem


def _entry(name: str, index: tuple[int, ...] | None, num: float, ana: float, allowed: float,
           direction: int | None = None) -> GradcheckEntry:
    return GradcheckEntry(name, index, num, ana, abs(num - ana), allowed, direction)


def _full(problem: _Problem, which: list[int], grads: list[np.ndarray], eps: float, atol: float,
          rtol: float) -> tuple[GradcheckEntry | None, int]:
    """Every entry of the inputs in ``which``: the worst comparison and how many there were."""
    worst, count = None, 0
    for i in which:
        arr, g = problem.arrays[i], grads[i]
        for idx in np.ndindex(arr.shape):
            orig = arr[idx]
            arr[idx] = orig + eps
            f_plus = problem.evaluate()
            arr[idx] = orig - eps
            f_minus = problem.evaluate()
            arr[idx] = orig
            num, ana = (f_plus - f_minus) / (2 * eps), float(g[idx])
            e = _entry(problem.names[i], tuple(int(k) for k in idx), num, ana,
                       atol + rtol * abs(ana))
            count += 1
            if worst is None or e.ratio > worst.ratio:
                worst = e
    return worst, count


def _fast(problem: _Problem, grads: list[np.ndarray], eps: float, atol: float, rtol: float,
          n_directions: int, rng: np.random.Generator) -> tuple[GradcheckEntry | None, int, int]:
    """Random unit directions per input: (worst comparison, its input, how many there were)."""
    worst, worst_input, count = None, -1, 0
    for i, (arr, g) in enumerate(zip(problem.arrays, grads, strict=True)):
        if arr.size == 0:
            continue
        base = arr.copy()
        for k in range(n_directions):
            u = rng.standard_normal(arr.shape)
            u /= np.linalg.norm(u)
            arr[...] = base + eps * u
            f_plus = problem.evaluate()
            arr[...] = base - eps * u
            f_minus = problem.evaluate()
            arr[...] = base
            num, ana = (f_plus - f_minus) / (2 * eps), float(np.sum(g * u))
            e = _entry(problem.names[i], None, num, ana,
                       atol * float(np.abs(u).sum()) + rtol * abs(ana), direction=k)
            count += 1
            if worst is None or e.ratio > worst.ratio:
                worst, worst_input = e, i
    return worst, worst_input, count


def gradcheck(f: Any, inputs: Any, analytic_grads: Any = None, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False,
              seed: int | None = None, *, n_directions: int = 1) -> GradcheckResult:
    """Check a hand-derived gradient against float64 central differences.

    ``f`` is one of:

    * a function returning a scalar, with ``inputs`` an array, a sequence of
      arrays or a dict of named arrays (passed as keywords).  Every floating
      input is differentiated; integer inputs (labels) are passed unchanged.
      ``analytic_grads`` gives the hand-derived gradients, one per floating
      input (arrays, a dict, or a callable taking the inputs like f).
    * a layer (``forward``/``backward``): ``inputs`` is x or ``(x, t, ...)``.
      With a fixed random v of the output's shape, f = sum(v * forward(x, ...))
      and its gradient is ``backward(v)`` for x and ``d<p>`` for every
      parameter p that has one (``W``/``dW``, ``b``/``db``, ...).
    * a model with ``params``, ``loss`` and ``gradient`` (``scratch.models.MLP``):
      ``inputs`` is ``(x, t)``; the gradient of ``loss(x, t)`` with respect to
      every entry of ``params`` (float64) is checked against ``gradient(x, t)``.

    Inputs are evaluated as float64 copies (layer and model parameters are
    perturbed in place and restored); the caller's arrays are never changed.
    Entries pass when ``|numerical - analytic| <= atol + rtol |analytic|``
    (torch.autograd.gradcheck's defaults: eps=1e-6 gives a truncation error
    ~eps^2 |f'''| and a rounding error ~1e-16 |f| / eps ~ 1e-10, far inside
    atol; a wrong derivation misses by O(1)).  Avoid kinks (relu at 0) within
    eps of an input: central differences are wrong there, not the gradient.

    ``fast=True`` checks ``n_directions`` random unit directions per input (2
    evaluations each) instead of every entry; see the comment above for the
    rule and its blind spot.  Returns a ``GradcheckResult``: truthy if it
    passed, ``.worst`` names the worst entry, ``.raise_if_failed()`` raises
    ``GradcheckError`` with the message.
    """
    check_positive("eps", eps)
    if atol < 0 or rtol < 0:
        raise ValueError(f"atol, rtol: expected non-negative numbers, got {atol!r}, {rtol!r}")
    if n_directions < 1:
        raise ValueError(f"n_directions: expected a positive integer, got {n_directions!r}")
    seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    if all(hasattr(f, a) for a in ("params", "loss", "gradient")):
        problem = _model_problem(f, inputs)
    elif hasattr(f, "forward") and hasattr(f, "backward"):
        problem = _layer_problem(f, inputs, rng)
    elif callable(f):
        problem = _function_problem(f, inputs, analytic_grads)
    else:
        raise ValueError(f"f: expected a function, a layer (forward/backward) or a model "
                         f"(params/loss/gradient), got {type(f).__name__}")
    try:
        grads = problem.analytic()
        fast_failure, notes = None, []
        if fast:
            worst, bad, n_checked = _fast(problem, grads, eps, atol, rtol, n_directions, rng)
            if worst is not None and worst.ratio > 1:   # name the entry: re-check that input fully
                fast_failure = worst
                full_worst, n_full = _full(problem, [bad], grads, eps, atol, rtol)
                n_checked += n_full
                if full_worst is not None and full_worst.ratio > 1:
                    worst = full_worst
                else:
                    notes.append(f"every entry of input {worst.input!r} passes on its own: the "
                                 f"error is spread thinly over many entries")
        else:
            worst, n_checked = _full(problem, list(range(len(problem.arrays))), grads, eps,
                                     atol, rtol)
    finally:
        problem.restore()
    passed = fast_failure is None and (worst is None or worst.ratio <= 1)
    return GradcheckResult(passed, fast, worst, problem.n_evals, problem.n_grad_evals, n_checked,
                           eps, atol, rtol, seed, fast_failure, notes)
