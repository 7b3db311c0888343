"""Array helpers shared by the scratch modules (not components, so not mirrored in torchref).

``as_float_array`` is the dtype rule of every scratch function; ``as_onehot``
validates targets against scores (through ``scratch._checks.check_targets``,
the same rule and message as the torch side) and returns them as rows;
``batch_size`` is the N of a loss's mean over the batch.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scratch._checks import check_targets


def as_float_array(x: ArrayLike) -> np.ndarray:
    """Return ``x`` as an array; floating dtypes are kept, others become float64."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def as_onehot(y: np.ndarray, t: ArrayLike, y_name: str = "y",
              t_name: str = "t") -> np.ndarray:
    """Validate ``t`` against scores ``y`` and return it as rows of y's shape and dtype."""
    t = np.asarray(t)
    is_int = bool(np.issubdtype(t.dtype, np.integer))
    t_min = int(t.min()) if is_int and t.size else None
    t_max = int(t.max()) if is_int and t.size else None
    if check_targets(y.shape, t.shape, is_int, t_min, t_max, y_name, t_name):
        return np.eye(y.shape[-1], dtype=y.dtype)[t]
    return t.astype(y.dtype, copy=False)


def batch_size(y: np.ndarray) -> int:
    """N of a batch (N, C); 1 for a single sample (C,)."""
    return y.shape[0] if y.ndim == 2 else 1
