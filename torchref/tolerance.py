"""The one tolerance policy: how close two results must be to count as equal.

Every parity test, the demo and the report compare through ``assert_close``
(or ``tolerance`` + ``max_errors``); no call site picks its own numbers.  A
comparison passes when, element-wise,

    |actual - expected| <= atol + rtol * |expected|

(``torch.testing.assert_close``'s rule).  The mode is chosen from the dtype
being compared, unless a test names an explicit mode: ``"tf32"`` for float32
matmuls and convolutions that ran on TensorFloat-32 units, ``"numerical"`` for
a finite-difference gradient.  Nothing is ever loosened silently: TF32 is a
mode a test switches on (``torchref.tolerance.tf32_enabled``), not a wider
float32 default.

The numbers and why (u = unit round-off of the format):

==========  ======  ======  ==============================================
mode        rtol    atol    reason
==========  ======  ======  ==============================================
float64     1e-9    1e-11   u = 1.1e-16.  Both sides compute the same
                            formula; they differ only in rounding and in
                            the order of sums (BLAS blocking, pairwise vs
                            sequential).  Summing K terms in another order
                            moves the result by at most ~K u of the sum of
                            |terms|; for K <= 1e4 that is < 1e-11 at unit
                            scale.  Six orders above the noise, six below
                            any real bug (a wrong term is O(1e-3) or more).
float32     1e-5    1e-5    u = 6.0e-8.  Same argument: ~sqrt(K) u typical
                            and K u worst for K <= 1e3 (an MLP layer of 784
                            inputs) gives up to 6e-5 of the sum of |terms|;
                            atol 1e-5 covers results near 0 that come from
                            cancellation of unit-scale terms (torch's own
                            float32 default atol).
tf32        1e-2    1e-2    TF32 keeps 10 mantissa bits: u = 4.9e-4 on
                            every input of a matmul/convolution, so K
                            products carry ~sqrt(K) u relative error: 1e-2
                            at unit scale for K up to ~400.  Only for
                            float32 results computed on CUDA with TF32 on.
bfloat16    2e-2    2e-2    u = 3.9e-3 (8 bits); one rounding of each input
                            and output: a few u.  For autocast results.
float16     2e-3    2e-3    u = 4.9e-4 (11 bits); a few u.
numerical   1e-5    1e-7    Central differences with h = 1e-4 in float64:
                            truncation h^2 |f'''| / 6 ~ 1e-9 at unit
                            scale, rounding ~ u |f| / h ~ 1e-12.  Both far
                            inside; a wrong derivation misses by far more.
                            Never used across a relu kink (tests keep
                            pre-activations away from 0).
==========  ======  ======  ==============================================

Known divergences (documented, not covered by widening a row).  ``KNOWN_DIVERGENCES``
below is the one table of them (where a native torch reference takes a shortcut
or a convention that differs from the textbook formula, and what to do about
it); ``divergence_notes`` picks the rows a failure message should mention.
The measurements behind the rows:

* Distillation loss, float32, alpha * T^2 > 1 (``scratch.distillation``; the
  default, the reference text's ``T^2 KL + CE``, has alpha's place taken by 1:
  T > 1).  The soft term is ``alpha * T^2 * KL``; each side's KL carries the float32
  rounding of its log-softmax rows, about u log C ~ 1e-7 absolute, and the
  two sides round differently (summation order, exp/log implementations).
  T^2 multiplies that difference: measured over 500 random cases (logits of
  scale 1 to 1e4, C <= 10, alpha = 1), the largest difference of the totals
  was 0.02x the float32 tolerance at T = 1, 0.2x at T = 4, 1.5x at T = 10 and
  140x at T = 100 (|diff| up to 2.4e-3 where the loss is O(10));
  ``scripts/kl_float32_divergence.py`` reproduces the measurement.  The
  parity test therefore compares, in float32, the two terms (KL and
  cross-entropy, within this policy at every T) and the total only where
  alpha * T^2 <= 1 (the default: T <= 1); float64 totals are compared at every
  T, and gradients (alpha T (q - p) / N: no T^2 amplification) in both dtypes.
* Batch normalization, handled by the inputs rather than the numbers: it
  divides by the batch std, which can be as small as sqrt(eps) (1e-3 for the
  course's eps = 1e-6) when a feature is constant over the batch.
  torch's CPU kernel computes ``x * a + (beta - mu * a)`` with ``a = gamma /
  std``, the course ``gamma * (x - mu) / std + beta``; the two differ by about
  ``u * |x| * |gamma| / std``: measured 1e-4 (constant column) to 6e-4 (a column
  whose values differ by one float32 ulp) in float32 for |x| = 3.7, |gamma| = 1.9,
  eps = 1e-6.  ``torchref.testing.strategies.batchnorm_case`` therefore gives every
  float32 column a spread (std >= 1/3) and draws constant columns in float64
  only (error ~1e-12 there), and the MLP tests with batch normalization run in
  float64.
* Layer normalization (and so the Transformer block and classifier), float32,
  handled by the inputs: torch's CPU kernel normalises in the folded form
  ``x * rstd - mean * rstd`` (forward and backward), the course as
  ``(x - mu) / std``; they differ by about ``u |x| / std`` in xn, and the
  gradients carry that times ``1 / std`` and ``|gamma dout|``, summed over the
  tokens for dgamma.  Measured: dgamma 7.8e-5 (7.8x the float32 tolerance) for a
  block whose norm1 input was a constant row (std = sqrt(eps) = 3.2e-3), dx
  6.1e-5 for D = 1.  ``torchref.testing._strategies_attention`` therefore gives
  every float32 layer-norm row a spread comparable to its size (grid values,
  two entries 2 apart, D >= 2) and conditions the float32 block (positive
  gammas, small sub-layer additions, relu inputs off the kink, first dropout
  keeping every unit); float64 takes constant rows and D = 1 (error ~1e-13).
  The whole TransformerClassifier is compared in float64 only (its layer-norm
  inputs come from its random init: measured 1e-3 relative in dWo, float32,
  E = 2), as the MLP with batch normalization is.
* Attention with a non-finite key at a *masked* position: the course replaces
  masked scores (``np.where(mask, S, -inf)``), torch's math kernel adds a
  ``-inf`` bias, and ``NaN + -inf`` (from ``inf * 0`` or ``inf - inf`` in
  ``q k^T``) is NaN, so torch's whole row is NaN where the course's ignores
  the key.  Pinned in parity_tests/test_attention.py; non-finite values at
  allowed positions and NaN values anywhere agree element by element.
* Attention backward at large scores, float32: torch's CPU kernel recomputes
  the weights as ``exp(S - logsumexp)`` with the logsumexp stored in float32,
  so at scores of magnitude L they carry ~u L of relative error (measured: a
  tie at L = 512 gives dv = 0.4999855, not 0.5, 2.9e-5 relative).  The course
  subtracts the row max, exact there.  float32 cases with scores beyond the
  overflow of exp therefore have one clear winner per row (weights exactly 0
  and 1 on both sides); float64 takes ties at |S| = 2304 (error ~3e-13).
* Adaptive optimizers (AdaGrad, RMSprop, Adam) over many steps:
  their step ``lr * g / (sqrt(h) + eps)`` turns a gradient entry that is 0 up to
  rounding (delta) into a step of up to ``lr * delta / eps``, 3e5 times delta for
  lr = 0.03 and the course's eps = 1e-7, compounded over the steps: measured
  1e-8 after 50 float64 MLP steps (RMSprop) and a 0.1 lr flip in float32 (Adam).
  The few-step optimizer tests use eps = 1e-7; the 50-step MLP test runs them
  in float64 with eps >= 1e-3 and beta2/decay_rate >= 0.9 (with beta2 near 0
  Adam's step is lr * sign(g), which rounding flips near g = 0).  The few-step
  test draws beta2/decay_rate >= 0.5 in float32: with beta2 = 0 a zero gradient
  after a non-zero one leaves v = 0 and the step ``lr m / eps`` multiplies the
  rounding of m (torch updates it by ``lerp``, ``1 - (1 - beta1)``, the course by
  ``beta1 m``) by lr/eps: 1.2% apart at beta1 = 1e-6, lr = 0.25.
* Recurrent layers over many steps in float32, handled by the inputs.  Each
  step feeds its rounding into the next through ``h Wh``; with large recurrent
  weights the tanh RNN and the GRU are chaotic and amplify the two sides'
  different rounding step by step.  Measured over 100 random layers each (N=3,
  T=50, D=4, H=5, Wx and Wh uniform in [-s, s], float32), the worst error of hs,
  dxs and dWh was 0.34x the float32 tolerance for the RNN at s = 1/sqrt(H), 0.41x
  at s = 1 and 36x at s = 3 (GRU: 0.15x, 0.15x, 20x; LSTM 0.52x at most);
  ``scripts/rnn_float32_divergence.py`` reproduces it.  ``rnn_case`` therefore
  draws weights at torch's init scale, 1/sqrt(H).  With non-finite inputs
  (``test_rnn.py::test_non_finite_inputs_like_torch``) the finite entries are
  compared at the scale of their array (divided by max(1, max |entry|)): a weight
  gradient entry is a sum over N*T steps, and its float32 rounding follows the
  largest entries.  Found by hypothesis: T = 50, x = -1.5 on every step, dWx up
  to 7.9 with an entry of 0.22; against float64, scratch was off by 2.3e-5 and
  torch by 6.3e-6 (3e-6 and 8e-7 of the array's scale), 1.3e-4 of the entry.
* Winograd convolution, float32 (``scratch.winograd``, the path of
  ``scratch.conv.Convolution`` for 3x3 stride-1 layers with >= 8 input
  channels).  Its transforms add and subtract up to 4 inputs before the
  products, so the products carry larger terms that cancel afterwards.
  Measured against a float64 reference (``scripts/winograd_float32_error.py``,
  6 shapes, C = 8 to 256): the largest error of out was 0.5x to 1.5x im2col's,
  of dx 1.4x to 2.6x, of dW 1.1x to 3.5x.  The parity tests' shapes (up to 12
  channels, images up to 9x9) stay within the float32 row.  dW sums over
  N*OH*OW pixels, beyond the row's K <= 1e3 for larger batches and images, for
  both paths: 8 images of 16x14x14 give dW errors of 1.9x the float32 tolerance
  (Winograd) and 0.8x (im2col) at entries near 0; no test compares such sizes in
  float32.  In float64 the Winograd path met the float64 row (largest
  difference from torch 1.1e-14 on the shapes checked by hand).

Inputs at the edges (decisions; ``parity_tests/test_edges.py``, ``test_nonfinite.py``):

* Non-finite values.  NaN positions compare equal (``equal_nan=True``); an inf
  must match an inf of the same sign; a NaN on one side only is a failure.  The
  scratch side follows torch where torch *selects* (``torch.where``, scatter):
  ``Relu`` forward and backward (``x * mask`` would give ``-inf * 0 = NaN``),
  ``relu_grad`` (1 at NaN, as ``threshold_backward``), the max-pool backward,
  the loss of integer labels (a label picks its log-probability, as
  ``nll_loss``/``cross_entropy``: a -inf logit elsewhere leaves the loss finite,
  while one-hot rows multiply, ``0 * -inf = NaN``, on both sides as in torch),
  and Momentum/Nesterov at momentum 0 (plain SGD, no ``0 * v``).  The scratch
  GRU backward sums the two paths of n in ``h = n + z (h_{t-1} - n)`` as written,
  ``dn = dh - z dh``, as autograd does: an infinite dh gives torch's
  ``inf - inf = NaN`` (the folded ``dh (1 - z)`` gave inf).  Where torch
  *multiplies* (dropout's mask, leaky_relu's slope, the loss weights alpha and
  1 - alpha times dout), scratch multiplies too.  Every input maker of the
  components table draws +inf/-inf/NaN (``nonfinite=True``, in half of its
  examples; ``torchref.testing._nonfinite``) in the inputs and in the upstream
  gradient (``Case.dout_edges``), and every component has pinned non-finite
  edges: ``strategies.edge_examples`` for the built-in rows, ``Component.examples``
  for the rows of a topical module (``torchref.components_rnn``, ``_cnn``) or a
  user's; a row without any needs ``skip["nonfinite"]`` with its reason, named
  here: ``positional_encoding`` (its inputs are the integer sizes T and E; no
  float input, no upstream gradient).  The Transformer block's feed-forward
  relu backward selects as torch's ``threshold_backward`` (0 where the relu
  output is <= 0, the gradient elsewhere, NaN included).  Not drawn, because torch's own result is
  implementation-specific there:
  - a non-finite ``dout`` of a padded Convolution (and non-finite pixels of a
    padded SimpleConvNet, which make that dout non-finite): torch's kernels
    skip the padded taps, im2col multiplies them (``inf * 0 = NaN`` in dW);
  - -inf pixels in padded max pooling: a window whose real pixels are all -inf
    sends torch's gradient to its first real pixel, ours to its first tap,
    which may be padding (``scratch.conv.Pooling``);
  - a -inf teacher logit in distillation: torch's two KL forms disagree there
    (``F.kl_div(log_target=True)``, which the mirror uses, gives
    ``exp(-inf) * (-inf - log q) = NaN``; the recipe's ``xlogy`` form gives 0);
  - a momentum that rounds to 0 in the parameters' dtype with non-finite
    gradients (torch rounds it, then ``0 * inf = NaN``; the course keeps it).
  - a non-finite upstream gradient of a loss (a scalar dL/dloss): times the
    folded gradient ``(softmax - t) / N`` an infinite dout gives +-inf where
    autograd's chain (``-dout t / N``, then the log-softmax backward) gives
    ``inf - inf = NaN``; the answer depends on the order in which the chain rule
    is multiplied out, not on the math.  Non-finite *inputs* of the losses are
    drawn.
  - +inf/-inf/NaN in q or k of ``scaled_dot_product_attention`` (and in query or
    key of ``MultiHeadAttention`` and the Transformer blocks): they can make a row
    of scores all -inf, for which torch 2.13's ``F.scaled_dot_product_attention``
    returns 0 (every backend, math included, as for a fully masked row) while the
    softmax is 0/0 = NaN, which scratch keeps.  Drawn in v / value only; pinned
    in q and k where no row is all -inf.
  - a non-finite upstream gradient of ``LayerNormalization``: with an infinite
    entry in dout the exact gradient ``(dxhat - mean(dxhat) - xhat mean(dxhat
    xhat)) / sigma`` holds inf - inf, so neither side's IEEE value is defined by
    the math; which entries come out -inf or NaN depends on the order of
    evaluation (hypothesis shrinks a difference to float32 rows of zeros, gamma 1,
    beta 0: one dx entry -inf in scratch, NaN in torch; the exact operation is not
    yet traced).  The pinned
    case with a non-finite dout passes; non-finite x is drawn.  The same holds for
    the Transformer blocks' dout (their layer norms), so ``TransformerBlock(encoder
    layer)``, whose x is also its keys (see q and k above), draws finite cases
    only (``skip["nonfinite"]``; its pinned non-finite edges run).
  - a non-finite upstream gradient of ``MultiHeadAttention``: the softmax
    backward ``p (dattn - sum(p dattn))`` of an infinite ``dattn = dout v^T``
    holds inf - inf, and dkey multiplies it by q, where a 0 (Wq = 0) meets inf:
    the IEEE result depends on the order of evaluation and on whether a matrix
    product evaluates 0 * inf (dkey +-inf in torch, NaN in scratch, float32 and
    float64; hypothesis finds E = 1, Wq = 0, query (0, -1, -1, -1)).  The pinned
    non-finite dout case passes; drawn dout stays finite here.
  - a +inf or NaN score, or a row of -inf scores, at an *ignored* step of
    ``TimeSoftmaxWithLoss``: the loss ignores the step on both sides (nll_loss
    selects), but torch's backward of that step is log_softmax's
    ``g - exp(out) sum(g)`` with ``g = 0`` and ``out`` NaN, so NaN, where the
    folded, masked ``(softmax - t) / n`` gives 0 (what the math says: the loss does
    not depend on the step).  Non-finite scores at counted steps are drawn.
* Targets that are not distributions.  ``SoftmaxWithLoss`` and
  ``DistillationLoss`` (and ``distillation_loss``), whose hand-derived backward
  ``softmax - t`` holds only for rows summing to 1, refuse target rows that are
  not probability distributions (an entry < 0, or a row sum off 1 by more than
  ``4 C eps`` of the dtype, NaN included): a ``ValueError`` naming ``t`` /
  ``labels`` on both sides.  ``softmax_cross_entropy`` and
  ``cross_entropy_error`` (functions) accept any rows: their documented
  gradients are exact for them.
* Empty batches (N = 0): every layer or loss that reduces or indexes over the
  batch (Affine, Convolution, Pooling, BatchNormalization, the losses,
  SoftmaxWithLoss, DistillationLoss, the models) raises ``ValueError`` naming its
  argument on both sides.  Native torch returns NaN for a mean loss over no
  samples (with a warning) and an empty tensor for a layer; element-wise
  functions and layers (relu, sigmoid, Dropout, ...) map an empty batch to an
  empty batch, as torch does.
* Numbers.  NumPy integers are accepted wherever Python ints are (sizes,
  stride, pad, pool sizes); a bool, a float or a string there is an error.
  Float hyper-parameters (lr, eps, momentum, betas, decay_rate, ratio,
  weight_decay_lambda, temperature, alpha) must be finite real numbers in their
  range; ``temperature`` also needs a finite ``1/temperature`` (1e-310 is
  refused).  An optimizer update validates every key, shape and dtype before it
  changes a parameter or its state (non-finite gradient *values* are accepted,
  as in ``torch.optim``: they reach the parameters).  The set of parameter keys
  is fixed by the first update on both sides: another set is a ``ValueError``
  naming the keys added and missing; the same keys in another order, or a new
  tensor for a key, keep each key's state.
* Layer contract: ``backward`` before ``forward`` is a ``RuntimeError``; a
  ``dout`` of another shape than the forward output a ``ValueError`` (never
  broadcast); a loss layer's ``dout`` must be a scalar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torchref.divergences import KNOWN_DIVERGENCES as KNOWN_DIVERGENCES  # re-export
from torchref.divergences import Divergence as Divergence  # re-export
from torchref.divergences import divergence_notes as divergence_notes  # re-export


@dataclass(frozen=True)
class Tolerance:
    """One row of the policy."""

    mode: str
    rtol: float
    atol: float
    reason: str


POLICY: dict[str, Tolerance] = {
    t.mode: t
    for t in (
        Tolerance("float64", 1e-9, 1e-11, "rounding and summation order only; u=1.1e-16"),
        Tolerance("float32", 1e-5, 1e-5, "summation order over <=1e3 terms; u=6.0e-8"),
        Tolerance("tf32", 1e-2, 1e-2, "TensorFloat-32 matmul/conv inputs; u=4.9e-4"),
        Tolerance("bfloat16", 2e-2, 2e-2, "bfloat16 inputs and outputs; u=3.9e-3"),
        Tolerance("float16", 2e-3, 2e-3, "float16 inputs and outputs; u=4.9e-4"),
        Tolerance("numerical", 1e-5, 1e-7, "central differences, h=1e-4, float64"),
    )
}

_DTYPE_MODES = {
    torch.float64: "float64", torch.float32: "float32", torch.bfloat16: "bfloat16",
    torch.float16: "float16",
}


def mode_for(dtype: Any) -> str:
    """The policy mode of a torch or numpy float dtype."""
    if not isinstance(dtype, torch.dtype):
        dtype = torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype
    if dtype not in _DTYPE_MODES:
        raise ValueError(f"dtype: no tolerance for {dtype}; expected one of "
                         f"{sorted(str(d) for d in _DTYPE_MODES)}")
    return _DTYPE_MODES[dtype]


def tolerance(dtype: Any = torch.float64, mode: str | None = None) -> Tolerance:
    """The policy row for ``mode`` if given, else for ``dtype``."""
    key = mode or mode_for(dtype)
    if key not in POLICY:
        raise ValueError(f"mode: expected one of {sorted(POLICY)}, got {key!r}")
    return POLICY[key]


def to_tensor(x: Any) -> torch.Tensor:
    """A CPU tensor of x (numpy array, scalar or tensor on any device), detached."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.from_numpy(np.array(x, copy=True))


def max_errors(actual: Any, expected: Any) -> tuple[float, float]:
    """Largest absolute and relative (|a - e| / |e|, 0/0 = 0) element-wise error; NaN
    against NaN and inf against the same inf count as no error (as in ``assert_close``)."""
    a, e = to_tensor(actual).double(), to_tensor(expected).double()
    if a.numel() == 0:
        return 0.0, 0.0
    same = (a == e) | (a.isnan() & e.isnan())      # NaN positions and equal infinities: 0
    diff = torch.where(same, torch.zeros_like(a), (a - e).abs())
    rel = torch.where(diff == 0, torch.zeros_like(diff), diff / e.abs())
    return float(diff.max()), float(rel.max())


def first_difference(actual: Any, expected: Any, *, mode: str | None = None) -> str:
    """The first element (in C order) outside the policy: its index, both values and the
    allowed error; "" when every element is within it or the shapes differ."""
    a, e = to_tensor(actual).double(), to_tensor(expected).double()
    if a.shape != e.shape or a.numel() == 0:
        return ""
    tol = tolerance(to_tensor(expected).dtype, mode)
    allowed = tol.atol + tol.rtol * e.abs()
    within = ((a - e).abs() <= allowed) | (a == e) | (a.isnan() & e.isnan())
    bad = (~within).nonzero()
    if not len(bad):
        return ""
    index = tuple(int(i) for i in bad[0])
    av, ev, al = float(a[index]), float(e[index]), float(allowed[index])
    return (f"first differing element at index {index}: {av!r} vs {ev!r} (expected), "
            f"|difference| {abs(av - ev):.3g} > allowed {al:.3g} "
            f"(atol {tol.atol:g} + rtol {tol.rtol:g} * |expected|)")


def assert_close(actual: Any, expected: Any, *, mode: str | None = None,
                 msg: str | None = None) -> None:
    """``torch.testing.assert_close`` with the policy's rtol/atol.

    NaN positions compare equal (a NaN on one side only fails), infinities must
    match exactly, sign included (see "Non-finite values" in the policy).
    Arrays and tensors are compared on the CPU; the dtypes must agree (a
    float32 result is not compared against float64 silently).  The mode comes
    from the expected dtype unless given.
    """
    a, e = to_tensor(actual), to_tensor(expected)
    tol = tolerance(e.dtype, mode)
    torch.testing.assert_close(
        a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=True,
        msg=(lambda m: f"{msg + ': ' if msg else ''}{m}\n(tolerance mode {tol.mode}: "
                       f"rtol={tol.rtol}, atol={tol.atol}; {tol.reason})"))


@contextlib.contextmanager
def tf32_enabled(enabled: bool = True) -> Iterator[None]:
    """Switch TF32 for CUDA matmuls and cuDNN convolutions on (or off) inside the block.

    On Ampere/Hopper GPUs cuDNN uses TF32 for float32 convolutions by default;
    parity tests turn it off for the ``float32`` mode and on, explicitly, for
    the ``tf32`` mode.
    """
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
