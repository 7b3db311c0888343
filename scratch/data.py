"""Datasets, returned the course's way: ``(x_train, t_train), (x_test, t_test)``.

``load_digits`` is the embedded default: scikit-learn's bundled handwritten
digits (1,797 real 8x8 images, 10 classes), so everything runs offline.
"""

from __future__ import annotations

import numpy as np

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def to_onehot(t: np.ndarray, n_classes: int = 10, dtype: type = np.float64) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, n_classes)."""
    return np.eye(n_classes, dtype=dtype)[t]


def stratified_split(t: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Indices (train, test) with the same class proportions in both parts.

    Each class is shuffled on its own (one seeded generator, classes in
    order) and its first ``round(test_fraction * count)`` samples go to test.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(t):
        idx = rng.permutation(np.flatnonzero(t == c))
        k = round(test_fraction * idx.size)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
                dtype: type = np.float64, test_fraction: float = DIGITS_TEST_FRACTION,
                seed: int = DIGITS_SPLIT_SEED) -> Split:
    """scikit-learn's 8x8 digits, split 80/20 per class with a fixed seed.

    Images are (N, 64) when ``flatten`` else (N, 1, 8, 8); pixel values 0..16
    are scaled to [0, 1] when ``normalize``.  Labels are integers (N,) or
    one-hot (N, 10).  The default split gives 1,437 training and 360 test images.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_digits needs scikit-learn: pip install 'torchref[data]' "
                          "(or pip install scikit-learn)") from exc
    bunch = sk_load_digits()
    x = bunch.data.astype(dtype)
    t = bunch.target.astype(np.int64)
    if normalize:
        x /= 16.0
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    tr, te = stratified_split(t, test_fraction, seed)
    t_out = to_onehot(t, 10, dtype) if one_hot_label else t
    return (x[tr], t_out[tr]), (x[te], t_out[te])
