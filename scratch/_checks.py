"""Argument checks shared by both sides (pure Python, no NumPy or torch).

They take shapes and plain numbers, so ``scratch`` and ``torchref`` reject the
same bad input with the same message.  Every message names the argument, what
was received and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence


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


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value > 0``."""
    if not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")


def check_unit_interval(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value <= 1``."""
    if not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")


def check_distillation_args(temperature: float, alpha: float) -> None:
    """``temperature`` a positive finite number, ``alpha`` in [0, 1] (distillation loss)."""
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature: expected a positive finite number, got {temperature!r}")
    check_unit_interval("alpha", alpha)
