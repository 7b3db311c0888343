"""Layers with a forward pass and a hand-derived backward pass.

Each layer is a tiny class: ``forward`` caches exactly what ``backward``
needs, ``backward(dout)`` takes dL/d(output) and returns dL/d(input), leaving
the parameter gradients on the layer (``dW``, ``db``).  Backward never
modifies its argument.  Chaining the layers' backward calls in reverse order
*is* backpropagation.

``Dropout`` (``scratch.dropout``) and ``BatchNormalization``
(``scratch.batchnorm``) live in their own modules and are re-exported here.
"""

from __future__ import annotations

import numpy as np

from scratch._arrays import as_float_array, as_onehot
from scratch._checks import (
    check_batch,
    check_dout,
    check_ndim,
    check_scalar_dout,
    forward_cache,
)
from scratch.batchnorm import BatchNormalization as BatchNormalization  # re-export
from scratch.distillation import DistillationLoss as DistillationLoss  # re-export
from scratch.dropout import Dropout as Dropout  # re-export
from scratch.functions import sigmoid, softmax
from scratch.losses import check_distribution_rows, softmax_cross_entropy


class Affine:
    """Fully connected layer ``out = x W + b``.

    Shapes: x (N, D) (or (N, *) flattened to (N, D)), W (D, M) stored (in, out)
    as in the course (``torch.nn.Linear`` stores the transpose), b (M,), out (N, M).

    Backward, from ``out_nm = sum_d x_nd W_dm + b_m``:
        dx = dout W^T                      (N, D), reshaped back to x's shape
        dW = x^T dout                      (D, M)
        db = sum_n dout_n                  (M,)

    ``input_grad=False`` skips dx (``backward`` returns None), as autograd skips
    the gradient of an input that does not require one: the first layer of a
    network never needs dx, and it is a third of that layer's arithmetic.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, input_grad: bool = True) -> None:
        check_ndim("W", np.shape(W), (2,))
        if np.shape(b) != (np.shape(W)[1],):
            raise ValueError(f"b: expected shape ({np.shape(W)[1]},) to match W "
                             f"{np.shape(W)}, got {np.shape(b)}")
        self.W, self.b = W, b
        self.input_grad = input_grad
        self.x: np.ndarray | None = None
        self.x_shape: tuple[int, ...] = ()
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        check_batch("x", x.shape)
        if x.ndim < 2 or x[0].size != self.W.shape[0]:
            raise ValueError(f"x: expected shape (N, {self.W.shape[0]}) (or (N, ...) with "
                             f"{self.W.shape[0]} features per sample), got {x.shape}")
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        x = forward_cache(self, "x")
        check_dout(self, np.shape(dout), (x.shape[0], self.W.shape[1]))
        self.dW = x.T @ dout
        self.db = dout.sum(axis=0)
        if not self.input_grad:
            return None
        return (dout @ self.W.T).reshape(self.x_shape)


class Relu:
    """``out = max(0, x)``; backward passes dout where x > 0 and 0 elsewhere.

    The mask *selects* (``np.where``), as torch does, rather than multiplies: ``x * mask``
    would turn x = -inf into ``-inf * 0 = NaN`` (torch: 0), and ``dout * mask`` an infinite
    dout at x <= 0 into NaN (torch: 0).  NaN inputs pass through (``NaN <= 0`` is False),
    and so does their dout, as in torch's ``threshold_backward``.

    Speed: ``np.where`` over a mask of random signs ran about 10x slower than a
    plain ufunc here (4.5 ms against 0.3-0.5 ms for 1.25M float32 numbers, a
    DeepConvNet activation), so forward is ``np.maximum(x, 0)`` (the same
    select: NaN passes, -inf and -0.0 give 0.0) and backward multiplies by the
    mask when dout is finite (there ``dout * 0`` is a zero, -0.0 for a negative
    dout, which compares equal), selecting only when dout has inf or NaN.
    """

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        self.mask = ~(x <= 0)
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        mask = forward_cache(self, "mask")
        check_dout(self, np.shape(dout), mask.shape)
        dout = np.asarray(dout)
        if np.isfinite(dout).all():
            return (dout * mask).astype(np.result_type(dout), copy=False)
        return np.where(mask, dout, 0).astype(np.result_type(dout), copy=False)


class Sigmoid:
    """``out = sigmoid(x)``; backward ``dx = dout * out * (1 - out)`` (reuses out)."""

    def __init__(self) -> None:
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = forward_cache(self, "out")
        check_dout(self, np.shape(dout), out.shape)
        return dout * (1.0 - out) * out


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy, as one layer.

    forward(x, t): x logits (N, C), t integer labels (N,) or rows (N, C);
    returns the mean loss ``L = -(1/N) sum t log softmax(x)``.
    backward(dout=1): ``dx = dout * (softmax(x) - t) / N``: the two Jacobians
    multiply out to this short form, which is why the pair is one layer.
    ``dout`` is a scalar (dL/d loss).

    The short form needs every row of t to sum to 1 (the general gradient is
    ``softmax(x) * sum_k t_k - t``), so rows of t must be probability distributions:
    entries >= 0 summing to 1 up to rounding (``scratch._checks.check_distribution``);
    anything else is a ``ValueError`` naming ``t``, as in ``torchref.layers``.
    """

    def __init__(self) -> None:
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self.loss: np.ndarray | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        rows = as_onehot(x, t, "x", "t")
        check_distribution_rows(rows, "t")
        self.loss = softmax_cross_entropy(x, t)
        self.t, self.y = rows, softmax(x)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        y = forward_cache(self, "y")
        check_scalar_dout(self, dout)
        n = y.shape[0] if y.ndim == 2 else 1
        return dout * (y - self.t) / n

# Convolutional layers live in scratch.conv (scratch.im2col underneath); re-exported here.
from scratch.conv import Convolution, Pooling  # noqa: E402, F401 (re-export)
