"""Non-finite values (+inf, -inf, NaN) for the input makers; re-exported by ``strategies``.

Every input maker of the components table takes ``nonfinite`` (on by default where
PyTorch defines the result, see "Non-finite values" in ``torchref.tolerance``): half
of its examples then carry +inf, -inf or NaN at drawn positions of the inputs, and
their upstream gradient ``dout`` holds such values too (``Case.dout_edges``).  The
positions are a drawn boolean mask, so a failure shrinks to the fewest non-finite
entries, and to finite inputs when the failure does not need them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

NONFINITE = (np.inf, -np.inf, np.nan)


@st.composite
def sprinkled(draw: st.DrawFn, x: np.ndarray,
              values: tuple[float, ...] = NONFINITE) -> np.ndarray:
    """``x`` with a drawn subset of its entries (none to all) replaced by drawn ``values``."""
    if x.size == 0 or x.dtype.kind != "f":
        return x
    mask = draw(hnp.arrays(np.bool_, x.shape))
    fill = draw(hnp.arrays(x.dtype, x.shape, elements=st.sampled_from(values)))
    return np.where(mask, fill, x).astype(x.dtype)


@st.composite
def maybe_nonfinite(draw: st.DrawFn, x: np.ndarray, nonfinite: bool = True,
                    values: tuple[float, ...] = NONFINITE) -> np.ndarray:
    """``x`` itself, or (when ``nonfinite``, in half of the examples) ``sprinkled(x)``."""
    if nonfinite and draw(st.booleans()):
        return draw(sprinkled(x, values))
    return x


def dout_edges(nonfinite: bool) -> st.SearchStrategy[bool]:
    """Whether the upstream gradient holds non-finite values (``Case.dout_edges``)."""
    return st.booleans() if nonfinite else st.just(False)


def edge_row(dtype: type, width: int = 6) -> np.ndarray:
    """One row holding every edge: -inf, +inf, NaN, 0, -0 and a finite value (for @example)."""
    row = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 1.5, -2.0, 3.0], dtype=dtype)
    return row[:width]
