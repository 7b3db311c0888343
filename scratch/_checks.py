"""Argument checks shared by both sides (pure Python, no NumPy or torch).

They take shapes and plain numbers, so ``scratch`` and ``torchref`` reject the
same bad input with the same message.  Every message names the argument, what
was received and what was expected.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Collection, Sequence
from typing import NamedTuple


def check_ndim(name: str, shape: Sequence[int], allowed: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``len(shape)`` is one of ``allowed``."""
    if len(shape) not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name}: expected a {want} array, got shape {tuple(shape)}")


def check_same_shape(name_a: str, shape_a: Sequence[int], name_b: str,
                     shape_b: Sequence[int]) -> None:
    """Raise ``ValueError`` unless the two shapes are equal."""
    if tuple(shape_a) != tuple(shape_b):
        raise ValueError(f"{name_b}: expected shape {tuple(shape_a)} to match {name_a}, "
                         f"got {tuple(shape_b)}")


def check_targets(y_shape: Sequence[int], t_shape: Sequence[int], t_is_integer: bool,
                  t_min: int | None = None, t_max: int | None = None,
                  y_name: str = "y", t_name: str = "t") -> bool:
    """Check class scores ``y`` (C,) or (N, C) against targets ``t``.

    ``t`` is either integer labels, shape () for 1-D ``y`` or (N,) for 2-D ``y``,
    with values in [0, C); or one-hot / probability rows of ``y``'s own shape.
    Returns True when ``t`` holds integer labels.
    """
    check_ndim(y_name, y_shape, (1, 2))
    check_batch(y_name, y_shape if len(y_shape) == 2 else (1,))
    n_classes = y_shape[-1]
    if n_classes < 1:
        raise ValueError(f"{y_name}: expected at least one class, got shape {tuple(y_shape)}")
    if t_is_integer:
        want = tuple(y_shape[:-1])
        if tuple(t_shape) != want:
            raise ValueError(f"{t_name}: integer labels for {y_name} of shape {tuple(y_shape)} "
                             f"must have shape {want}, got {tuple(t_shape)}")
        if t_min is not None and t_min < 0:
            raise ValueError(f"{t_name}: expected integers in [0, {n_classes}), got min {t_min}")
        if t_max is not None and t_max >= n_classes:
            raise ValueError(f"{t_name}: expected integers in [0, {n_classes}), got max {t_max}")
        return True
    if tuple(t_shape) != tuple(y_shape):
        raise ValueError(f"{t_name}: one-hot targets must have the shape of {y_name} "
                         f"{tuple(y_shape)}, got {tuple(t_shape)} (or pass integer labels of "
                         f"shape {tuple(y_shape[:-1])})")
    return False


def check_number(name: str, value: object) -> float:
    """``value`` as a float: a real number (NumPy scalars included; not a bool, a string or
    an array).  Raises ``ValueError`` naming ``name`` otherwise.  NaN and inf pass here: the
    range checks below reject them with their range in the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite number ``> 0``; returns it as a float."""
    if not 0 < check_number(name, value) < math.inf:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def check_rate(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a decay rate, a momentum, a ratio)."""
    if not 0 <= check_number(name, value) < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite number ``>= 0``."""
    if not 0 <= check_number(name, value) < math.inf:
        raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
    return float(value)


def check_finite(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite real number."""
    if not math.isfinite(check_number(name, value)):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_distribution(t_name: str, n_classes: int, row_sums: tuple[float, float],
                       t_min: float, eps: float) -> None:
    """Rows of ``t`` must be probability distributions: entries >= 0 summing to 1.

    ``row_sums`` is the (smallest, largest) row sum, ``t_min`` the smallest entry, ``eps``
    the machine epsilon of the dtype they were computed in.  Rounding is allowed for:
    a row of C probabilities computed in floating point sums to 1 within about C eps,
    so the tolerance is ``4 C eps`` (float32, C = 10: 4.8e-6).  NaN entries fail.
    """
    tol = 4 * max(n_classes, 1) * eps
    lo, hi = row_sums
    if not (lo >= 1 - tol and hi <= 1 + tol):
        bad = lo if not lo >= 1 - tol else hi
        raise ValueError(f"{t_name}: expected rows summing to 1 (probability distributions, "
                         f"up to {tol:.2g} for rounding), got a row summing to {bad!r}; pass "
                         f"integer labels or normalise the rows")
    if not t_min >= -tol:
        raise ValueError(f"{t_name}: expected probabilities >= 0, got {t_min!r}")


def as_int(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as a Python int: any integer (``np.int64(2)`` included, not a bool nor a
    float such as 2.0); ``>= minimum`` when given.  Raises ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_batch(name: str, shape: Sequence[int]) -> None:
    """Raise ``ValueError`` on an empty batch (``shape[0] == 0``).

    A mean over no samples is 0/0: NumPy warns and returns NaN, torch returns NaN (a loss)
    or an empty tensor (a layer); both sides refuse it instead (``torchref.tolerance``).
    """
    if len(shape) >= 1 and shape[0] == 0:
        raise ValueError(f"{name}: expected a batch of at least one sample, got shape "
                         f"{tuple(shape)}")


def as_pair(name: str, value: int | Sequence[int], minimum: int = 0) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(2, 3) -> (2, 3)``: a (height, width) pair of integers >= minimum.

    Used for stride and padding, which may differ along the two spatial axes.  NumPy
    integers are accepted and returned as Python ints.
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    try:
        pair = (value, value) if is_int else tuple(value)  # type: ignore[arg-type]
        if len(pair) != 2:
            raise ValueError
        return tuple(as_int(name, v, minimum) for v in pair)  # type: ignore[return-value]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an integer >= {minimum} or a pair of them, "
                         f"got {value!r}") from None


def conv_output_size(in_hw: Sequence[int], kernel_hw: Sequence[int],
                     stride_hw: Sequence[int], pad_hw: Sequence[int]) -> tuple[int, int]:
    """Output (height, width) of a convolution or pooling window sliding over ``in_hw``.

    ``out = (in + 2 pad - kernel) // stride + 1`` per axis (torch's floor mode:
    a last partial window is dropped).  Raises ``ValueError`` when the kernel
    does not fit in the padded input, i.e. ``in + 2 pad < kernel``.
    """
    out = []
    for axis, i, k, s, p in zip(("height", "width"), in_hw, kernel_hw, stride_hw, pad_hw,
                                strict=True):
        if i + 2 * p < k:
            raise ValueError(f"x: input {axis} {i} with padding {p} is smaller than the "
                             f"kernel {axis} {k}; expected {axis} >= {k - 2 * p}")
        out.append((i + 2 * p - k) // s + 1)
    return out[0], out[1]


def check_pool_pad(kernel_hw: Sequence[int], pad_hw: Sequence[int]) -> None:
    """Pooling pads at most half the window per side (torch's rule), so no window is all pad."""
    for k, p in zip(kernel_hw, pad_hw, strict=True):
        if 2 * p > k:
            raise ValueError(f"pad: expected at most half the pool size {tuple(kernel_hw)}, "
                             f"got {tuple(pad_hw)}")


POOL_MODES = ("max", "avg")


def pool_args(pool_h: int, pool_w: int, stride: int | Sequence[int] | None,
              pad: int | Sequence[int], mode: str) -> tuple[tuple[int, int], ...]:
    """The arguments of ``Pooling`` (both sides): (kernel, stride, pad) as (height, width) pairs.

    The stride defaults to the window (torch's default); ``mode`` is one of ``POOL_MODES``.
    """
    kernel = as_pair("pool size", (pool_h, pool_w), 1)
    stride_hw = kernel if stride is None else as_pair("stride", stride, 1)
    pad_hw = as_pair("pad", pad, 0)
    check_pool_pad(kernel, pad_hw)
    if mode not in POOL_MODES:
        raise ValueError(f"mode: expected one of {POOL_MODES}, got {mode!r}")
    return kernel, stride_hw, pad_hw


# --- optimizers (scratch.optim / torchref.optim) --------------------------------------------

def check_param_keys(first: tuple[str, ...] | None, keys: tuple[str, ...]) -> tuple[str, ...]:
    """An optimizer's parameter keys: fixed by its first update (``first`` None: this is it).

    Returns the keys to keep; raises ``ValueError`` naming every key added or missing since.
    """
    if first is None or set(first) == set(keys):
        return first or keys
    added, missing = sorted(set(keys) - set(first)), sorted(set(first) - set(keys))
    raise ValueError(f"params: keys differ from the optimizer's first update (added {added}, "
                     f"missing {missing}); its state is kept per key: make a new optimizer "
                     f"for another set of parameters")


# --- the models (scratch.models / torchref.models, scratch.convnet / torchref.convnet) -------

def check_regularisation(weight_decay_lambda: float, dropout_ratio: float) -> None:
    """The models' shared options: ``weight_decay_lambda >= 0``, ``dropout_ratio`` in [0, 1)."""
    check_non_negative("weight_decay_lambda", weight_decay_lambda)
    check_rate("dropout_ratio", dropout_ratio)


def mlp_args(sizes: Sequence[int], activation: str, activations: Collection[str],
             weight_decay_lambda: float, dropout_ratio: float) -> list[int]:
    """Check the MLP's constructor arguments; returns ``sizes`` as a list of ints."""
    sizes = [as_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes: expected at least two positive widths (input and "
                         f"output), got {sizes}")
    if activation not in activations:
        raise ValueError(f"activation: expected one of {sorted(activations)}, "
                         f"got {activation!r}")
    check_regularisation(weight_decay_lambda, dropout_ratio)
    return sizes


# SimpleConvNet (scratch.convnet and torchref.convnet): the conv_param defaults.
DEFAULT_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def conv_net_shapes(input_dim: Sequence[int], conv_param: dict,
                    hidden_size: int, output_size: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of SimpleConvNet in the course's layout.

    W1 (FN, C, FS, FS), b1 (FN,), W2 (FN*PH*PW, hidden), b2 (hidden,),
    W3 (hidden, out), b3 (out,), with (PH, PW) the size of the 2x2-pooled maps.

    Raises ``ValueError`` on an input the filter or the 2x2 pooling does not fit.
    """
    if len(input_dim) != 3 or min(input_dim) < 1:
        raise ValueError(f"input_dim: expected (C, H, W) of positive sizes, got {input_dim!r}")
    unknown = set(conv_param) - set(DEFAULT_CONV)
    if unknown:
        raise ValueError(f"conv_param: unknown keys {sorted(unknown)}; expected some of "
                         f"{sorted(DEFAULT_CONV)}")
    p = {**DEFAULT_CONV, **conv_param}
    fn, fs = as_int("filter_num", p["filter_num"]), as_int("filter_size", p["filter_size"])
    if fn < 1 or fs < 1 or hidden_size < 1 or output_size < 1:
        raise ValueError(f"conv_param/hidden_size/output_size: expected positive sizes, got "
                         f"{p}, {hidden_size}, {output_size}")
    c, h, w = (as_int("input_dim", v) for v in input_dim)
    try:
        conv_hw = conv_output_size((h, w), (fs, fs), (p["stride"],) * 2, (p["pad"],) * 2)
        pool_hw = conv_output_size(conv_hw, (2, 2), (2, 2), (0, 0))
    except ValueError as exc:
        raise ValueError(f"input_dim: {tuple(input_dim)} does not fit conv_param {p} and "
                         f"the 2x2 pooling ({exc})") from exc
    return {"W1": (fn, c, fs, fs), "b1": (fn,), "W2": (fn * pool_hw[0] * pool_hw[1], hidden_size),
            "b2": (hidden_size,), "W3": (hidden_size, output_size), "b3": (output_size,)}


class ConvNetSpec(NamedTuple):
    """SimpleConvNet's checked constructor arguments and its parameter shapes."""

    input_dim: tuple[int, ...]
    conv_param: dict
    hidden_size: int
    output_size: int
    shapes: dict[str, tuple[int, ...]]


def conv_net_args(input_dim: Sequence[int], conv_param: dict | None, hidden_size: int,
                  output_size: int, weight_decay_lambda: float = 0.0,
                  dropout_ratio: float = 0.5) -> ConvNetSpec:
    """Check SimpleConvNet's constructor arguments (both sides); fills in ``DEFAULT_CONV``."""
    input_dim = tuple(as_int("input_dim", v) for v in input_dim)
    conv_param = {k: as_int(f"conv_param[{k!r}]", v) if k in DEFAULT_CONV else v
                  for k, v in {**DEFAULT_CONV, **(conv_param or {})}.items()}
    hidden_size, output_size = as_int("hidden_size", hidden_size), as_int("output_size",
                                                                           output_size)
    shapes = conv_net_shapes(input_dim, conv_param, hidden_size, output_size)
    check_regularisation(weight_decay_lambda, dropout_ratio)
    return ConvNetSpec(input_dim, conv_param, hidden_size, output_size, shapes)


def check_unit_interval(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``0 <= value <= 1``."""
    if not 0 <= check_number(name, value) <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def check_distillation_args(temperature: float, alpha: float) -> None:
    """``temperature`` a positive finite number whose reciprocal is finite (the logits are
    divided by it: T = 1e-310 would make 1/T = inf and the loss NaN), ``alpha`` in [0, 1]."""
    T = check_positive("temperature", temperature)
    if not math.isfinite(1.0 / T):
        raise ValueError(f"temperature: {temperature!r} is too small: 1/temperature overflows "
                         f"(expected at least {1 / sys.float_info.max:.3g})")
    check_unit_interval("alpha", alpha)


# --- backward's preconditions (every scratch layer) ----------------------------------------

def forward_cache(layer: object, name: str) -> object:
    """``getattr(layer, name)``: what ``forward`` cached for ``backward``.

    Raises ``RuntimeError`` when it is still None, i.e. ``backward`` was called
    before ``forward`` (instead of an ``AttributeError`` about None deep inside).
    """
    value = getattr(layer, name)
    if value is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward: call "
                           f"forward first (backward uses the {name!r} that forward caches)")
    return value


def check_dout(layer: object, dout_shape: Sequence[int], out_shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``dout`` has the shape of the layer's forward output.

    Element-wise layers would otherwise broadcast a wrong ``dout`` silently.
    """
    if tuple(dout_shape) != tuple(out_shape):
        raise ValueError(f"dout: expected shape {tuple(out_shape)} (the shape of "
                         f"{type(layer).__name__}.forward's output), got {tuple(dout_shape)}")


def check_scalar_dout(layer: object, dout: object) -> None:
    """A loss layer's ``backward(dout)``: ``dout`` is dL/d(loss), a scalar (a number or a 0-d
    array); an array would broadcast against the gradient silently."""
    shape = getattr(dout, "shape", None)
    if shape is None and isinstance(dout, numbers.Real) and not isinstance(dout, bool):
        return
    if shape is None or tuple(shape) != ():
        got = f"shape {tuple(shape)}" if shape is not None else repr(dout)
        raise ValueError(f"dout: expected a scalar (the gradient of {type(layer).__name__}'s "
                         f"scalar loss), got {got}")


def check_batch_for_training(shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless a training batch has at least 2 samples."""
    if shape[0] < 2:
        raise ValueError(f"x: batch normalization in training needs at least 2 samples, "
                         f"got shape {tuple(shape)}")
