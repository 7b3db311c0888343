"""Knowledge distillation: a student learns from a teacher's softened outputs.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network"
(2015): a small *student* network is trained to match the class probabilities
of a large *teacher*, softened by a temperature T, as well as the true labels.
The teacher's wrong-but-plausible classes ("this 3 looks a bit like an 8")
carry information the one-hot labels do not.

The loss
--------
Student logits s, teacher logits t, both (N, C) (or (C,) for one sample);
labels y as integers (N,) or one-hot rows (N, C).  With

    p = softmax(t / T)        the teacher's soft targets
    q = softmax(s / T)        the student's soft predictions
    KL  = (1/N) sum_n KL(p_n || q_n),   KL(p || q) = sum_k p_k (log p_k - log q_k) >= 0
    CE  = -(1/N) sum_n sum_k y_nk log softmax(s_n)_k

the default (``alpha=None``) is the PyTorch reference text's recipe, the
*unweighted sum*

    L = T^2 * KL + CE
      = KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) * T^2
        + cross_entropy(s, labels)                                        (tested)

and ``alpha`` in [0, 1] gives Hinton et al.'s weighted form

    L_alpha = alpha * T^2 * KL + (1 - alpha) * CE        (= L / 2 at alpha = 0.5)

alpha = 0 is plain cross-entropy; alpha = 1 is pure distillation.  Below, ``w_s``
and ``w_h`` are the two weights: (1, 1) by default, (alpha, 1 - alpha) with
alpha.  Why T^2:
the soft term's gradient carries a factor 1/T^2 at high temperature (see below),
so multiplying by T^2 keeps the two terms' gradients on the same scale when T
changes (Hinton et al., section 2).

``reduction="batchmean"`` divides the summed KL by N, which is the KL per sample
averaged over the batch, as here; ``reduction="mean"`` would divide by N * C and
is not the KL.  We feed KLDivLoss log-probabilities for *both* arguments
(``log_target=True``): ``log(softmax(t/T))`` turns into ``log 0 = -inf`` (or
loses all precision in subnormals) once a teacher probability underflows, while
``log_softmax`` stays finite.

The gradient, by hand (the teacher is a constant: it gets no gradient)
--------------------------------------------------------------------
With log q_k = s_k/T - log sum_j exp(s_j/T), d log q_k / d s_j = (delta_kj - q_j) / T:

    d KL(p || q) / d s_j = -sum_k p_k (delta_kj - q_j) / T = (q_j - p_j) / T

using sum_k p_k = 1.  The hard term gives the familiar (softmax(s) - y).  So

    dL/ds = [ w_s * T * (q - p)  +  w_h * (softmax(s) - y) ] / N,

i.e. ``[T (q - p) + softmax(s) - y] / N`` by default and
``[alpha T (q - p) + (1 - alpha)(softmax(s) - y)] / N`` with alpha.

High-temperature limit.  Write h(u) = softmax(u s) - softmax(u t), u = 1/T,
so T (q - p) = h(u) / u and h(0) = 0.  At u = 0 softmax is uniform and its
Jacobian is (I - 11^T / C) / C, so h'(0) = ((s - mean s) - (t - mean t)) / C:

    T * (q - p) = ((s - mean s) - (t - mean t)) / C  +  c2 / T  +  O(1 / T^2),
    c2 = (1 / 2C) [ (s_c^2 - mean s_c^2) - (t_c^2 - mean t_c^2) ],  x_c = x - mean x.

So the soft gradient ``w_s T (q - p) / N`` tends to ``w_s (s_c - t_c) / (N C)``,
independent of T: the gradient of ``w_s / (2 N C) sum (s_c - t_c)^2``, i.e. at
high temperature distillation matches the teacher's centred logits by least
squares (Hinton et al.'s observation).  Without the T^2 factor the soft
gradient would vanish like 1/T^2.  Taylor's theorem with |d^2 softmax(u x)/du^2|
<= R^2 and |d^3 .../du^3| <= 2 R^3 (R = max x - min x of the row) bounds the
remainders: |T (q - p) - h'(0)| <= (R_s^2 + R_t^2) / (2T) and
|T (q - p) - h'(0) - c2/T| <= (R_s^3 + R_t^3) / (3 T^2), element-wise (tested).

Numerical edges
---------------
Everything goes through ``log_softmax`` (row max subtracted), so logits up to
|1e4| at T = 0.1 (exponents up to 1e5) stay finite in float32 and float64: a
teacher probability that underflows to 0 contributes 0 * (finite) = 0.
Rounding can make the computed KL a tiny negative number when p ~ q.  In
float32 at high temperature the soft *value* T^2 KL carries the rounding of
log-softmax (about u * log C per row, u = 6e-8) multiplied by T^2: up to ~1e-3
absolute at T = 100 (see ``torchref.tolerance``); its *gradient* T (q - p) has
no such amplification.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scratch._arrays import as_float_array, as_onehot, batch_size
from scratch._checks import (
    check_distillation_args,
    check_same_shape,
    check_scalar_dout,
    forward_cache,
)
from scratch.functions import log_softmax, softmax
from scratch.losses import _picked, check_distribution_rows


def loss_weights(temperature: float, alpha: float | None) -> tuple[float, float]:
    """``(w_s, w_h)``, the weights of ``T^2 KL`` and ``CE``: ``(1, 1)`` for ``alpha=None``
    (the reference text's unweighted sum), else ``(alpha, 1 - alpha)``; validates both."""
    check_distillation_args(temperature, 0.0 if alpha is None else alpha)
    return (1.0, 1.0) if alpha is None else (float(alpha), 1.0 - float(alpha))


def _prepare(student_logits: ArrayLike, teacher_logits: ArrayLike, labels: ArrayLike,
             temperature: float, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate; return s, t (in s's dtype), one-hot labels and the batch size N."""
    check_distillation_args(temperature, alpha)
    s = as_float_array(student_logits)
    t = np.asarray(teacher_logits)
    check_same_shape("student_logits", s.shape, "teacher_logits", t.shape)
    y = as_onehot(s, labels, "student_logits", "labels")
    check_distribution_rows(y, "labels")
    return s, t.astype(s.dtype, copy=False), y, batch_size(s)


def distillation_terms(student_logits: ArrayLike, teacher_logits: ArrayLike,
                       labels: ArrayLike, temperature: float = 2.0) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """The two terms before weighting: ``(KL(p || q) batch mean, cross-entropy)``.

    ``distillation_loss = T^2 * kl + ce`` (or ``alpha * T^2 * kl + (1 - alpha) * ce``).
    Both 0-d arrays in the student's dtype; useful to log the two parts while training.
    """
    s, t, y, n = _prepare(student_logits, teacher_logits, labels, temperature, 0.0)
    T = float(temperature)
    log_p, log_q = log_softmax(t / T), log_softmax(s / T)
    kl = np.sum(np.exp(log_p) * (log_p - log_q)) / n
    log_s = log_softmax(s)
    picked = _picked(log_s, labels)        # integer labels select (as torch's cross_entropy)
    ce = -np.sum(y * log_s if picked is None else picked) / n
    return kl, ce


def distillation_loss(student_logits: ArrayLike, teacher_logits: ArrayLike,
                      labels: ArrayLike, temperature: float = 2.0,
                      alpha: float | None = None) -> np.ndarray:
    """``T^2 * KL(softmax(t/T) || softmax(s/T)) + CE(s, labels)``, the reference text's recipe;
    with ``alpha`` in [0, 1]: ``alpha * T^2 * KL + (1 - alpha) * CE``.

    Shapes: student and teacher logits (N, C) or (C,); labels integers (N,) / ()
    or one-hot rows like the logits.  KL and CE are means over the batch.
    ``temperature > 0``.  Gradient w.r.t. the student logits:
    ``[w_s T (q - p) + w_h (softmax(s) - y)] / N`` (module docstring); the teacher
    is a constant.  Returns a 0-d array in the student's dtype.
    """
    w_soft, w_hard = loss_weights(temperature, alpha)
    T = float(temperature)
    kl, ce = distillation_terms(student_logits, teacher_logits, labels, T)
    return w_soft * T**2 * kl + w_hard * ce


def resolve_temperature(T: float, temperature: float | None) -> float:
    """``DistillationLoss(T)``, or the older keyword ``temperature=`` (not both)."""
    if temperature is None:
        return T
    if T != 2.0:
        raise ValueError(f"temperature: pass T or temperature (its older name), not both; "
                         f"got T={T!r}, temperature={temperature!r}")
    return temperature


def distillation_loss_backward(dout: ArrayLike, student_logits: ArrayLike,
                               teacher_logits: ArrayLike, labels: ArrayLike,
                               temperature: float = 2.0,
                               alpha: float | None = None) -> np.ndarray:
    """dL/ds = dout [w_s T (softmax(s/T) - softmax(t/T)) + w_h (softmax(s) - y)] / N, with
    (w_s, w_h) = (1, 1) by default and (alpha, 1 - alpha) with alpha (the module docstring
    derives it); the teacher gets no gradient."""
    w_soft, w_hard = loss_weights(temperature, alpha)
    s, t, y, n = _prepare(student_logits, teacher_logits, labels, temperature, 0.0)
    T = float(temperature)
    q, p = softmax(s / T), softmax(t / T)
    soft, hard = dout * w_soft, dout * w_hard      # dout weights each term (autograd's order)
    return (soft * T * (q - p) + hard * (softmax(s) - y)) / n


class DistillationLoss:
    """The distillation loss as a layer, with its hand-derived backward.

    ``DistillationLoss(T=2.0)`` is the reference text's recipe, ``T^2 KL + CE``;
    ``DistillationLoss(T, alpha)`` the weighted ``alpha T^2 KL + (1 - alpha) CE``.
    ``temperature=`` is accepted for ``T`` (its older name).
    ``forward(student_logits, teacher_logits, labels)`` returns the loss (and
    keeps ``soft_loss`` = KL, ``hard_loss`` = cross-entropy for logging);
    ``backward(dout=1)`` returns dL/d(student logits), shape of the student's
    logits:

        dx = dout * [w_s * T * (q - p) + w_h * (softmax(s) - y)] / N

    with q = softmax(s/T), p = softmax(t/T), (w_s, w_h) = (1, 1) by default and
    (alpha, 1 - alpha) with alpha.  No gradient reaches the teacher.
    ``dout`` multiplies each weight first, ``(dout w_s) T (q - p) + (dout w_h)
    (softmax(s) - y)``, as autograd does: an infinite dout with a zero weight gives NaN
    (``inf * 0``) there, as in torch.  Label rows must be probability distributions.
    """

    def __init__(self, T: float = 2.0, alpha: float | None = None, *,
                 temperature: float | None = None) -> None:
        T = resolve_temperature(T, temperature)
        self.w_soft, self.w_hard = loss_weights(T, alpha)
        self.temperature, self.alpha = float(T), None if alpha is None else float(alpha)
        self.q: np.ndarray | None = None       # softmax(s / T)
        self.p: np.ndarray | None = None       # softmax(t / T)
        self.y: np.ndarray | None = None       # softmax(s)
        self.t: np.ndarray | None = None       # one-hot labels
        self.n = 1
        self.soft_loss: np.ndarray | None = None
        self.hard_loss: np.ndarray | None = None
        self.loss: np.ndarray | None = None

    @property
    def T(self) -> float:
        """The temperature."""
        return self.temperature

    def forward(self, student_logits: ArrayLike, teacher_logits: ArrayLike,
                labels: ArrayLike) -> np.ndarray:
        T = self.temperature
        s, t, self.t, self.n = _prepare(student_logits, teacher_logits, labels, T, 0.0)
        self.soft_loss, self.hard_loss = distillation_terms(s, t, labels, T)
        self.q, self.p, self.y = softmax(s / T), softmax(t / T), softmax(s)
        self.loss = self.w_soft * T**2 * self.soft_loss + self.w_hard * self.hard_loss
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        forward_cache(self, "q")
        check_scalar_dout(self, dout)
        T = self.temperature
        soft, hard = dout * self.w_soft, dout * self.w_hard
        return (soft * T * (self.q - self.p) + hard * (self.y - self.t)) / self.n
