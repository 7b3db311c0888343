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


def edge_examples() -> dict[str, tuple]:
    """Pinned non-finite edges per component of ``torchref.components`` (float64 arrays; the
    harness casts them to the dtype under test): ``Component.examples``, hypothesis's
    ``@example``, so every run checks them whatever it draws."""
    from torchref.parity import Case

    inf, nan = np.inf, np.nan
    row = edge_row(np.float64)[None]                                  # (1, 6)
    elementwise = (Case((row,), dout_edges=True), Case((row,)),
                   Case((np.array([[0.0, -1.0, 2.0]]),), dout_edges=True))
    logits = np.array([[-inf, 0.0, 1.0], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [-inf, -inf, 0.0]])
    labels = np.array([1, 2, 1, 2])
    onehot = np.eye(3)[labels]
    probs = np.array([[inf, 0.5, 0.0], [nan, 0.5, 0.5], [0.0, 1.0, 0.0], [0.2, 0.3, -inf]])
    s, t = logits[:2], np.array([[0.0, inf, 1.0], [1.0, 0.0, -1.0]])
    W, b = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]), np.array([0.0, 1.0, -1.0])
    img = np.array([[[[inf, 0.0, 1.0], [2.0, nan, -1.0], [0.0, 1.0, -inf]]]])
    pool_x = np.array([[[[nan, 1.0], [inf, -inf]], [[-inf, 1.0], [0.0, 0.0]]]])
    net = {"input_dim": (1, 3, 3), "hidden_size": 2, "output_size": 2,
           "conv_param": {"filter_num": 1, "filter_size": 2, "pad": 0, "stride": 1},
           "weight_init_std": "he"}
    mask = np.array([[True, False, True, False, True, False]])
    bn_x = np.array([[inf, 1.0], [0.0, 2.0], [1.0, -1.0]])
    bn_init = (np.array([1.0, 0.5]), np.array([0.0, 1.0]), 0.9, np.zeros(2), np.ones(2))
    grads = np.array([[[inf, nan]], [[-inf, 1.0]], [[1.0, 1.0]]])
    edges: dict[str, tuple] = {
        name: elementwise for name in ("step_function", "sigmoid", "sigmoid_grad", "relu",
                                       "relu_grad", "identity_function", "Relu", "Sigmoid")}
    edges |= {
        "softmax": (Case((logits,), kwargs={"axis": -1}, dout_edges=True),
                    Case((logits,), kwargs={"axis": 0})),
        "log_softmax": (Case((logits,), kwargs={"axis": -1}, dout_edges=True),),
        "mean_squared_error": (Case((row, row[:, ::-1].copy())),),
        "cross_entropy_error": (Case((probs, labels)), Case((probs, onehot))),
        "softmax_cross_entropy": (Case((logits, labels)), Case((logits[[0, 3]], labels[[0, 3]])),
                                  Case((logits, onehot))),
        "SoftmaxWithLoss": (Case((logits, labels)), Case((logits[[0, 3]], labels[[0, 3]])),
                            Case((logits, onehot))),
        "Affine": (Case((row[:, :2].repeat(2, 0),), (W, b), dout_edges=True),),
        "leaky_relu": (Case((row,), kwargs={"negative_slope": 0.0}, dout_edges=True),
                       Case((row,), kwargs={"negative_slope": 0.2}, dout_edges=True)),
        "LeakyRelu": (Case((row,), (0.0,), dout_edges=True), Case((row,), (0.2,))),
        "MLP": (Case((row[:, :2].repeat(2, 0), np.array([0, 1])), ([2, 3, 2], "relu", 0)),),
        "Convolution": (Case((img,), (np.ones((1, 1, 2, 2)), np.zeros(1), (1, 1), (0, 0)),
                             dout_edges=True),),
        "Pooling(max)": (Case((pool_x,), (2, 2, (2, 2), (0, 0), "max"), dout_edges=True),),
        "Pooling(avg)": (Case((pool_x,), (2, 2, (1, 1), (1, 1), "avg"), dout_edges=True),),
        "SimpleConvNet": (Case((img, np.array([1])), (net, 0)),),
        "distillation_loss": tuple(
            Case((s, t, labels[:2]), kwargs={"temperature": 2.0, "alpha": a}) for a in (0.0, 0.5)),
        "DistillationLoss": (Case((s, t, labels[:2]), (2.0, 0.5)),
                             Case((s, t, labels[:2]), (2.0, 0.0))),
    }
    for mode, train in (("train", True), ("eval", False)):
        edges[f"Dropout({mode})"] = (Case((row,), (mask, 0.5, False), {"train_flg": train},
                                          dout_edges=True),)
        edges[f"BatchNormalization({mode})"] = (Case((bn_x,), bn_init, {"train_flg": train},
                                                     dout_edges=True),)
    for name in ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"):
        edges[name] = (Case((np.zeros((1, 2)), grads), ({"lr": 0.1},)),)
    for name in ("Momentum", "Nesterov"):          # momentum 0 is plain SGD (no 0 * inf)
        steps = np.array([[[inf, 1.0]], [[1.0, -inf]], [[1.0, 1.0]]])
        edges[name] += (Case((np.zeros((1, 2)), steps), ({"lr": 0.1, "momentum": 0.0},)),)
    return edges


def pinned_edges(component: object) -> tuple:
    """Every pinned edge of a row of the table: the built-in ones (``edge_examples``) and its
    own ``Component.examples`` (a topical module's or a user's row carries them itself)."""
    return edge_examples().get(component.name, ()) + tuple(component.examples)
