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

    L = alpha * T^2 * (1/N) sum_n KL(p_n || q_n)                (soft term)
      + (1 - alpha) * (-(1/N) sum_n sum_k y_nk log softmax(s_n)_k)   (hard term)

    KL(p || q) = sum_k p_k (log p_k - log q_k)  >= 0,  = 0 iff p = q.

alpha = 0 is plain cross-entropy; alpha = 1 is pure distillation.  Why T^2:
the soft term's gradient carries a factor 1/T^2 at high temperature (see below),
so multiplying by T^2 keeps the two terms' gradients on the same scale when T
changes (Hinton et al., section 2).

Relation to the common PyTorch recipe
-------------------------------------
    KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) * T^2
        + cross_entropy(s, labels)

is the *unweighted sum* of the two terms, i.e. exactly ``2 * L`` at alpha = 0.5
(tested).  ``reduction="batchmean"`` divides the summed KL by N, which is the KL
per sample averaged over the batch, as here; ``reduction="mean"`` would divide
by N * C and is not the KL.  We feed KLDivLoss log-probabilities for *both*
arguments (``log_target=True``): ``log(softmax(t/T))`` turns into ``log 0 = -inf``
(or loses all precision in subnormals) once a teacher probability underflows,
while ``log_softmax`` stays finite.

The gradient, by hand (the teacher is a constant: it gets no gradient)
--------------------------------------------------------------------
With log q_k = s_k/T - log sum_j exp(s_j/T), d log q_k / d s_j = (delta_kj - q_j) / T:

    d KL(p || q) / d s_j = -sum_k p_k (delta_kj - q_j) / T = (q_j - p_j) / T

using sum_k p_k = 1.  The hard term gives the familiar (softmax(s) - y).  So

    dL/ds = [ alpha * T * (q - p)  +  (1 - alpha) * (softmax(s) - y) ] / N.

High-temperature limit.  Write h(u) = softmax(u s) - softmax(u t), u = 1/T,
so T (q - p) = h(u) / u and h(0) = 0.  At u = 0 softmax is uniform and its
Jacobian is (I - 11^T / C) / C, so h'(0) = ((s - mean s) - (t - mean t)) / C:

    T * (q - p) = ((s - mean s) - (t - mean t)) / C  +  c2 / T  +  O(1 / T^2),
    c2 = (1 / 2C) [ (s_c^2 - mean s_c^2) - (t_c^2 - mean t_c^2) ],  x_c = x - mean x.

So the soft gradient ``alpha T (q - p) / N`` tends to ``alpha (s_c - t_c) / (N C)``,
independent of T: the gradient of ``alpha / (2 N C) sum (s_c - t_c)^2``, i.e. at
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

    ``distillation_loss = alpha * T^2 * kl + (1 - alpha) * ce``.  Both 0-d arrays
    in the student's dtype; useful to log the two parts while training.
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
                      alpha: float = 0.5) -> np.ndarray:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``.

    Shapes: student and teacher logits (N, C) or (C,); labels integers (N,) / ()
    or one-hot rows like the logits.  KL and CE are means over the batch.
    ``temperature > 0``, ``alpha`` in [0, 1].  Gradient w.r.t. the student
    logits: ``[alpha T (q - p) + (1 - alpha)(softmax(s) - y)] / N`` (module
    docstring); the teacher is a constant.  Returns a 0-d array in the
    student's dtype.
    """
    check_distillation_args(temperature, alpha)
    T, alpha = float(temperature), float(alpha)
    kl, ce = distillation_terms(student_logits, teacher_logits, labels, T)
    return alpha * T**2 * kl + (1.0 - alpha) * ce


def distillation_loss_backward(dout: ArrayLike, student_logits: ArrayLike,
                               teacher_logits: ArrayLike, labels: ArrayLike,
                               temperature: float = 2.0, alpha: float = 0.5) -> np.ndarray:
    """dL/ds = dout [alpha T (softmax(s/T) - softmax(t/T)) + (1 - alpha)(softmax(s) - y)] / N
    (the module docstring derives it); the teacher gets no gradient."""
    s, t, y, n = _prepare(student_logits, teacher_logits, labels, temperature, alpha)
    T, alpha = float(temperature), float(alpha)
    q, p = softmax(s / T), softmax(t / T)
    soft, hard = dout * alpha, dout * (1 - alpha)      # dout weights each term (autograd's order)
    return (soft * T * (q - p) + hard * (softmax(s) - y)) / n


class DistillationLoss:
    """The distillation loss as a layer, with its hand-derived backward.

    ``forward(student_logits, teacher_logits, labels)`` returns the loss (and
    keeps ``soft_loss`` = KL, ``hard_loss`` = cross-entropy for logging);
    ``backward(dout=1)`` returns dL/d(student logits), shape of the student's
    logits:

        dx = dout * [alpha * T * (q - p) + (1 - alpha) * (softmax(s) - y)] / N

    with q = softmax(s/T), p = softmax(t/T).  No gradient reaches the teacher.
    ``dout`` multiplies each weight first, ``(dout alpha) T (q - p) + (dout (1 - alpha))
    (softmax(s) - y)``, as autograd does: an infinite dout at alpha = 0 gives NaN
    (``inf * 0``) there, as in torch.  Label rows must be probability distributions.
    """

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5) -> None:
        check_distillation_args(temperature, alpha)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.q: np.ndarray | None = None       # softmax(s / T)
        self.p: np.ndarray | None = None       # softmax(t / T)
        self.y: np.ndarray | None = None       # softmax(s)
        self.t: np.ndarray | None = None       # one-hot labels
        self.n = 1
        self.soft_loss: np.ndarray | None = None
        self.hard_loss: np.ndarray | None = None
        self.loss: np.ndarray | None = None

    def forward(self, student_logits: ArrayLike, teacher_logits: ArrayLike,
                labels: ArrayLike) -> np.ndarray:
        T, alpha = self.temperature, self.alpha
        s, t, self.t, self.n = _prepare(student_logits, teacher_logits, labels, T, alpha)
        self.soft_loss, self.hard_loss = distillation_terms(s, t, labels, T)
        self.q, self.p, self.y = softmax(s / T), softmax(t / T), softmax(s)
        self.loss = alpha * T**2 * self.soft_loss + (1.0 - alpha) * self.hard_loss
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        forward_cache(self, "q")
        check_scalar_dout(self, dout)
        T, alpha = self.temperature, self.alpha
        soft, hard = dout * alpha, dout * (1.0 - alpha)
        return (soft * T * (self.q - self.p) + hard * (self.y - self.t)) / self.n
