"""Strategies for the deeper CNNs and the learning-rate schedulers (re-exported by
``torchref.testing.strategies``, where every strategy of the suite is found)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scratch.convnets import cnn_spec, deep_spec, spec_shapes

SPEC_NET_KINDS = ("CNN", "DeepConvNet")
# Smallest images each network takes: the CNN's two unpadded 3x3 convolutions and its pool
# need 6 pixels; the DeepConvNet's three pools need 4 (4 -> 2 -> 4 (pad 2) -> 2 -> 1).
MIN_SIDE = {"CNN": 6, "DeepConvNet": 4}


@st.composite
def spec_net_case(draw: st.DrawFn, kind: str | None = None, dtype: type | None = None,
                  max_n: int = 3, unique: bool = False) -> dict:
    """A small ``CNN`` or ``DeepConvNet``: ``kind``, constructor ``kwargs`` (small images and
    hidden layer, drawn options: weight decay, dropout), x (N, C, H, W), labels (N,), seed,
    and ``masks``: one boolean mask per dropout layer, of that layer's output shape.

    ``unique`` draws pairwise distinct pixels in [-1, 1] (for finite differences).
    """
    kind = kind or draw(st.sampled_from(SPEC_NET_KINDS))
    dtype = dtype or draw(st.sampled_from((np.float32, np.float64)))
    lo = MIN_SIDE[kind]
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(lo, lo + 2)), draw(st.integers(lo, lo + 2))
    n, classes, hidden = (draw(st.integers(1, max_n)), draw(st.integers(2, 4)),
                          draw(st.integers(1, 5)))
    kwargs = {"in_shape": (c, h, w), "hidden_size": hidden, "output_size": classes,
              "use_dropout": draw(st.booleans()),
              "weight_decay_lambda": draw(st.sampled_from([0.0, 0.1])),
              "weight_init_std": draw(st.sampled_from(["he", "xavier", 0.1]))}
    if kind == "DeepConvNet":
        kwargs["dropout_ratio"] = draw(st.floats(0.0, 0.9))
        spec = deep_spec(hidden, classes, kwargs["use_dropout"], kwargs["dropout_ratio"])
    else:
        spec = cnn_spec(hidden, classes, kwargs["use_dropout"])
    _, outputs = spec_shapes(spec, (c, h, w))
    masks = [draw(hnp.arrays(np.bool_, (n, *outputs[name])))
             for name, layer_kind, _ in spec if layer_kind == "dropout"]
    bound = st.floats(-1.0, 1.0, width=32 if np.dtype(dtype) == np.float32 else 64)
    if unique:
        x = draw(hnp.arrays(dtype, (n, c, h, w), elements=bound, unique=True))
    elif draw(st.booleans()):
        x = draw(hnp.arrays(dtype, (n, c, h, w), elements=bound))
    else:   # a few small integers: exact ties in the max-pool windows
        x = draw(hnp.arrays(dtype, (n, c, h, w), elements=st.integers(-2, 2).map(float)))
    return {"kind": kind, "kwargs": kwargs, "x": x,
            "t": draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))),
            "seed": draw(st.integers(0, 2**32 - 1)), "masks": masks}


SCHEDULER_NAMES = ("StepLR", "CosineAnnealingLR", "ReduceLROnPlateau")


@st.composite
def scheduler_case(draw: st.DrawFn, name: str | None = None, epochs: int = 100) -> dict:
    """A learning-rate schedule: ``name``, the initial ``lr``, constructor ``kwargs`` (as
    ``torch.optim.lr_scheduler`` takes them) and, for ``ReduceLROnPlateau``, ``metrics``: one
    value per epoch, a drawn walk with plateaus (repeated values), small and large moves, so
    patience, cooldown, threshold and min_lr all come into play."""
    name = name or draw(st.sampled_from(SCHEDULER_NAMES))
    lr = draw(st.floats(1e-4, 1.0))
    metrics: list[float] = []
    if name == "StepLR":
        kwargs = {"step_size": draw(st.integers(1, 40)), "gamma": draw(st.floats(0.01, 1.0))}
    elif name == "CosineAnnealingLR":
        kwargs = {"T_max": draw(st.integers(1, 60)),
                  "eta_min": draw(st.sampled_from([0.0, lr / 100, lr / 3]))}
    else:
        kwargs = {"mode": draw(st.sampled_from(["min", "max"])),
                  "factor": draw(st.floats(0.05, 0.95)), "patience": draw(st.integers(0, 6)),
                  "threshold": draw(st.sampled_from([0.0, 1e-4, 1e-2, 0.1])),
                  "threshold_mode": draw(st.sampled_from(["rel", "abs"])),
                  "cooldown": draw(st.integers(0, 4)),
                  "min_lr": draw(st.sampled_from([0.0, lr / 50, lr / 4])),
                  "eps": draw(st.sampled_from([1e-8, 0.0, lr / 20]))}
        moves = draw(st.lists(st.sampled_from([0.0, 0.0, -1e-5, 1e-5, -0.01, 0.01, -0.5, 0.5]),
                              min_size=epochs, max_size=epochs))
        value = draw(st.floats(0.1, 10.0))
        for move in moves:
            value = max(1e-3, value * (1 + move))
            metrics.append(value)
    return {"name": name, "lr": lr, "kwargs": kwargs, "metrics": metrics}


# ---- input makers of the components table (torchref.components_cnn) --------------------------

@st.composite
def spec_net_parity_case(draw: st.DrawFn, dtype: type, kind: str = "CNN",
                         nonfinite: bool = True) -> object:
    """A small ``CNN`` / ``DeepConvNet`` without dropout (the harness shares no masks):
    init (constructor kwargs, seed), args (x with +inf/-inf/NaN pixels in half the examples
    when ``nonfinite``, integer labels)."""
    from torchref.parity import Case
    from torchref.testing._nonfinite import maybe_nonfinite
    c = draw(spec_net_case(kind, dtype))
    c["kwargs"]["use_dropout"] = False
    return Case((draw(maybe_nonfinite(c["x"], nonfinite)), c["t"]),
                (c["kwargs"], c["seed"]), {})


@st.composite
def distillation_recipe_case(draw: st.DrawFn, dtype: type, layer: bool = False,
                             nonfinite: bool = True) -> object:
    """(student logits, teacher logits, labels or one-hot rows) and the temperature only:
    the reference text's recipe, ``alpha`` left at its default.  float32 draws T <= 1: above,
    the float32 *total* amplifies the rounding of the KL term by T^2, the divergence
    documented in ``torchref.tolerance`` (its terms are compared in test_distillation).
    ``nonfinite``: +inf/-inf/NaN student logits and +inf/NaN teacher logits (no -inf teacher
    logit: torch's two KL forms disagree there) in half the examples."""
    from torchref.parity import Case
    from torchref.testing._nonfinite import maybe_nonfinite
    from torchref.testing._strategies_arrays import onehot
    from torchref.testing._strategies_cases import distillation_case
    s, t, labels, T, _ = draw(distillation_case(dtype, one_dim=None))
    if np.dtype(dtype) == np.float32:
        T = min(T, 1.0)
    target = onehot(labels, s.shape[-1], dtype) if draw(st.booleans()) else labels
    s = draw(maybe_nonfinite(s, nonfinite))
    t = draw(maybe_nonfinite(t, nonfinite, values=(np.inf, np.nan)))
    if layer:       # a loss: its dout is a finite scalar
        return Case((s, t, target), (T,), {})
    return Case((s, t, target), (), {"temperature": T})
