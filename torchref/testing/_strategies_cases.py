"""The input makers of the components table (``torchref.components``): ``dtype ->``
a strategy of ``Case`` (re-exported by ``torchref.testing.strategies``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from torchref.testing._nonfinite import NONFINITE, dout_edges, maybe_nonfinite
from torchref.testing._strategies_arrays import (
    _case,
    arrays,
    dtypes,
    floats,
    labels_for,
    logits,
    onehot,
    probabilities,
)
from torchref.testing._strategies_conv import conv_case, convnet_case, pool_case
from torchref.testing._strategies_training import (
    batchnorm_case,
    dropout_case,
    mlp_case,
    optimizer_kwargs,
)

# ---- input makers of the components table (torchref.components): dtype -> strategy of Case ----
# ``nonfinite`` (default on): half the examples carry +inf/-inf/NaN in the inputs and in the
# upstream gradient (``torchref.testing._nonfinite``).  SCALAR_DOUT: a loss's upstream gradient
# is a scalar and is not drawn non-finite: an infinite dL/dloss times the folded gradient
# (softmax - t) / N gives +-inf where autograd's chain (-dout t / N, then the log-softmax
# backward) gives inf - inf = NaN; which one depends on the order the chain rule is
# multiplied out (torchref.tolerance).

@st.composite
def elementwise_case(draw: st.DrawFn, dtype: type, bound: float = 1e4,
                     nonfinite: bool = True) -> object:
    """One array (N, C), N from 0, values up to +-1e4 (the overflow edges of exp)."""
    shape = draw(st.tuples(st.integers(0, 5), st.integers(1, 6)))
    x = draw(maybe_nonfinite(draw(arrays(dtype, shape, bound)), nonfinite))
    return _case(x, dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def softmax_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """Logits (1-D or 2-D, unit, huge or tied) and the axis, -1 or (2-D only) 0."""
    x = draw(maybe_nonfinite(draw(logits(dtype)), nonfinite))
    return _case(x, axis=draw(st.sampled_from([-1, 0])) if x.ndim == 2 else -1,
                 dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def mse_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """y and t of one shape, (K,) or (N, K)."""
    shape = draw(st.sampled_from([1, 2]).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 6)] * nd)))
    y, t = (draw(maybe_nonfinite(draw(arrays(dtype, shape)), nonfinite)) for _ in range(2))
    return _case(y, t)      # a loss: its dout is a finite scalar (SCALAR_DOUT)


@st.composite
def _targets(draw: st.DrawFn, scores: np.ndarray) -> np.ndarray:
    t = draw(labels_for(scores))
    return onehot(t, scores.shape[-1], scores.dtype) if draw(st.booleans()) else t


@st.composite
def probabilities_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """Probability rows y (N, C) (exact zeros included) and labels or one-hot t."""
    y = draw(probabilities(dtype))
    t = draw(_targets(y))
    return _case(draw(maybe_nonfinite(y, nonfinite)), t)      # finite scalar dout (SCALAR_DOUT)


@st.composite
def logits_targets_case(draw: st.DrawFn, dtype: type, one_dim: bool | None = None,
                        nonfinite: bool = True) -> object:
    """Logits (C,) or (N, C) of any magnitude and labels or one-hot targets."""
    a = draw(logits(dtype, one_dim=one_dim))
    t = draw(_targets(a))
    return _case(draw(maybe_nonfinite(a, nonfinite)), t)      # finite scalar dout (SCALAR_DOUT)


@st.composite
def affine_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """x (N, D) or (N, 1, 1, D), and the layer's W (D, M), b (M,)."""
    n, d, m = draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(1, 5))
    x = draw(arrays(dtype, (n, 1, 1, d) if draw(st.booleans()) else (n, d)))
    return _case(draw(maybe_nonfinite(x, nonfinite)),
                 init=(draw(arrays(dtype, (d, m))), draw(arrays(dtype, (m,)))),
                 dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def mlp_parity_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """A small MLP: init (sizes, activation, weight seed), args (x, integer labels)."""
    sizes, x, t, seed = draw(mlp_case(dtype))
    return _case(draw(maybe_nonfinite(x, nonfinite)), t,
                 init=(sizes, draw(st.sampled_from(["relu", "sigmoid"])), seed))


@st.composite
def leaky_relu_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """x (N, C) up to +-1e4 (zeros included: the kink) and the layer's negative_slope."""
    x = draw(arrays(dtype, st.tuples(st.integers(0, 5), st.integers(1, 6)), 1e4))
    return _case(draw(maybe_nonfinite(x, nonfinite)),
                 init=(draw(st.sampled_from([0.0, 0.01, 0.2, 1.0])),),
                 dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def leaky_relu_function_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """The same inputs for the function form: the slope goes as a keyword."""
    case = draw(leaky_relu_case(dtype, nonfinite))
    return _case(*case.args, negative_slope=case.init[0], dout_edges=case.dout_edges)


# ---- input makers of the components table for the CNN (torchref.components) ----------------

@st.composite
def convolution_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """x (N, C, H, W) and the layer's init (W, b, stride, pad): a whole ``conv_case``.

    A non-finite ``dout`` only without padding: torch's kernels skip the padded taps where
    im2col multiplies them (``inf * 0 = NaN`` in dW), see ``torchref.tolerance``."""
    c = draw(conv_case(dtype))
    return _case(draw(maybe_nonfinite(c["x"], nonfinite)),
                 init=(c["W"], c["b"], c["stride"], c["pad"]),
                 dout_edges=draw(dout_edges(nonfinite and c["pad"] == (0, 0))))


@st.composite
def pooling_case(draw: st.DrawFn, dtype: type, mode: str = "max",
                 nonfinite: bool = True) -> object:
    """x (N, C, H, W) (ties included) and init (pool_h, pool_w, stride, pad, mode).

    No -inf pixels in padded max pooling: a window whose real pixels are all -inf is a
    documented divergence of the tie rule (``scratch.conv.Pooling``, ``torchref.tolerance``)."""
    c = draw(pool_case(dtype))
    values = (np.inf, np.nan) if mode == "max" and c["pad"] != (0, 0) else NONFINITE
    return _case(draw(maybe_nonfinite(c["x"], nonfinite, values)),
                 init=(*c["kernel"], c["stride"], c["pad"], mode),
                 dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def convnet_parity_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """A small SimpleConvNet: init (constructor kwargs, seed), args (x, integer labels).

    Non-finite pixels only without padding (they make the convolution's dout non-finite:
    see ``convolution_case``)."""
    c = draw(convnet_case(dtype))
    nonfinite = nonfinite and c["kwargs"]["conv_param"]["pad"] == 0
    return _case(draw(maybe_nonfinite(c["x"], nonfinite)), c["t"], init=(c["kwargs"], c["seed"]))


@st.composite
def dropout_layer_case(draw: st.DrawFn, dtype: type, train: bool = True,
                       nonfinite: bool = True) -> object:
    """x, init (shared keep-mask, ratio, inverted) and ``train_flg``: a whole ``dropout_case``."""
    x, mask, ratio, _ = draw(dropout_case(dtype))
    return _case(draw(maybe_nonfinite(x, nonfinite)), init=(mask, ratio, draw(st.booleans())),
                 train_flg=train, dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def batchnorm_layer_case(draw: st.DrawFn, dtype: type, train: bool = True,
                         nonfinite: bool = True) -> object:
    """x, init (gamma, beta, momentum, running_mean, running_var) and ``train_flg``:
    a whole ``batchnorm_case`` (its conditioning by construction)."""
    c = draw(batchnorm_case(dtype))
    return _case(draw(maybe_nonfinite(c["x"], nonfinite)),
                 init=(c["gamma"], c["beta"], c["momentum"], c["running_mean"],
                       c["running_var"]), train_flg=train, dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def optimizer_steps_case(draw: st.DrawFn, dtype: type, optimizer: str = "sgd",
                         nonfinite: bool = True) -> object:
    """A parameter W (R, C), the gradients of 1 to 6 steps (steps, R, C), and init
    (the hyper-parameters of ``optimizer_kwargs(optimizer)``)."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    steps = draw(st.integers(1, 6))
    grads = draw(maybe_nonfinite(draw(arrays(dtype, (steps, *shape))), nonfinite))
    kwargs = draw(optimizer_kwargs(optimizer))
    if not np.isfinite(grads).all() and kwargs.get("momentum", 0) > 0 \
            and np.dtype(dtype).type(kwargs["momentum"]) == 0:
        # torch rounds a momentum too small for the dtype to 0 (then 0 * inf = NaN), the
        # course's formula keeps it: implementation-specific (torchref.tolerance), not drawn
        kwargs["momentum"] = 0.0
    return _case(draw(arrays(dtype, shape)), grads, init=(kwargs,))


# --- knowledge distillation (parity_tests/test_distillation.py) -----------------------------

#: The temperatures the distillation loss promises to handle, ends included.
TEMPERATURE_RANGE = (0.1, 100.0)

temperatures = st.one_of(st.sampled_from([0.1, 1.0, 2.0, 4.0, 20.0, 100.0]),
                         st.floats(*TEMPERATURE_RANGE))
alphas = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))


@st.composite
def logits_of_shape(draw: st.DrawFn, shape: tuple[int, ...], dtype: type,
                    kinds: tuple[str, ...] = ("unit", "huge", "ties")) -> np.ndarray:
    """Logits of a given shape: unit scale (|x| <= 10), huge (|x| <= 1e4) or one tied value."""
    kind = draw(st.sampled_from(kinds))
    if kind == "ties":
        return np.full(shape, draw(floats(dtype, 1e4)), dtype=dtype)
    return draw(arrays(dtype, shape, 10.0 if kind == "unit" else 1e4))


@st.composite
def distillation_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 6,
                      max_c: int = 10, one_dim: bool | None = False,
                      kinds: tuple[str, ...] = ("unit", "huge", "ties"),
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(student logits, teacher logits, integer labels, temperature, alpha).

    Student and teacher have the same shape, (N, C) or (C,) when ``one_dim``
    (drawn if None), and are drawn independently (each unit, huge or tied).
    """
    dtype = dtype or draw(dtypes)
    one_dim = draw(st.booleans()) if one_dim is None else one_dim
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    shape = (c,) if one_dim else (n, c)
    s = draw(logits_of_shape(shape, dtype, kinds))
    t = draw(logits_of_shape(shape, dtype, kinds))
    return s, t, draw(labels_for(s)), draw(temperatures), draw(alphas)


@st.composite
def distillation_loss_case(draw: st.DrawFn, dtype: type, layer: bool = False,
                           nonfinite: bool = True) -> object:
    """A ``distillation_case`` (1-D or 2-D, labels or one-hot) for the components table:
    temperature and alpha as keywords, or as the layer's init when ``layer``.

    float32 draws alpha in [0, min(1, 1/T^2)] (alpha scaled by construction): above
    alpha T^2 = 1 the float32 *total* amplifies the rounding of the KL term by T^2, a
    documented divergence (``torchref.tolerance``); float64 takes every alpha.
    """
    s, t, labels, T, alpha = draw(distillation_case(dtype, one_dim=None))
    if np.dtype(dtype) == np.float32:
        alpha *= min(1.0, 1.0 / T**2)
    target = onehot(labels, s.shape[-1], dtype) if draw(st.booleans()) else labels
    # no -inf teacher logit: torch's two KL forms disagree there (torchref.tolerance)
    s = draw(maybe_nonfinite(s, nonfinite))
    t = draw(maybe_nonfinite(t, nonfinite, values=(np.inf, np.nan)))
    if layer:       # a loss: its dout is a finite scalar (SCALAR_DOUT)
        return _case(s, t, target, init=(T, alpha))
    return _case(s, t, target, temperature=T, alpha=alpha)
