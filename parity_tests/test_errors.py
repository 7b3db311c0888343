"""Bad input gets a ValueError naming the argument, on both sides, with the same message."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import scratch.layers as sl
import scratch.losses as sls
import scratch.models as sm
import scratch.optim as so
import torchref.layers as tl
import torchref.losses as tls
import torchref.models as tm
from scratch.gradient import numerical_gradient
from scratch.leaky_relu import LeakyRelu
from torchref.device import resolve_device

Y = np.full((4, 3), 1 / 3)
CASES = [
    # (function name, y, t, message pattern)
    ("cross_entropy_error", Y, np.array([0, 1, 2, 3]),
     r"t: expected integers in \[0, 3\), got max 3"),
    ("cross_entropy_error", Y, np.array([0, -1, 2, 0]),
     r"t: expected integers in \[0, 3\), got min -1"),
    ("cross_entropy_error", Y, np.array([0, 1]), r"t: integer labels .* must have shape \(4,\)"),
    ("cross_entropy_error", Y, np.zeros((4, 2)), r"t: one-hot targets must have the shape"),
    ("cross_entropy_error", np.ones((2, 2, 2)), np.array([0]), r"y: expected a 1-D or 2-D array"),
    ("softmax_cross_entropy", Y, np.array([0, 1, 2, 7]), r"t: expected integers in \[0, 3\)"),
    ("softmax_cross_entropy", np.ones((1, 2, 3)), np.array([0]), r"logits: expected a 1-D or 2-D"),
    ("mean_squared_error", Y, np.zeros((4, 2)), r"t: expected shape \(4, 3\) to match y"),
]


@pytest.mark.parametrize(("fn", "y", "t", "pattern"), CASES)
def test_loss_errors_same_on_both_sides(fn: str, y: np.ndarray, t: np.ndarray,
                                        pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as scratch_err:
        getattr(sls, fn)(y, t)
    with pytest.raises(ValueError, match=pattern) as torch_err:
        getattr(tls, fn)(torch.from_numpy(y), torch.from_numpy(t))
    assert str(scratch_err.value) == str(torch_err.value)


def test_affine_errors() -> None:
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\)"):
        sl.Affine(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"W: expected a 2-D array"):
        tl.Affine(torch.ones(2, 3, 1), torch.ones(3))
    layer = sl.Affine(np.ones((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=re.escape("x: expected shape (N, 2)")):
        layer.forward(np.ones((4, 5)))
    with pytest.raises(ValueError, match=re.escape("x: expected shape (N, 2)")):
        tl.Affine(torch.ones(2, 3), torch.zeros(3))(torch.ones(4, 5))


def test_model_and_optimizer_errors() -> None:
    for cls in (sm.MLP, tm.MLP):
        with pytest.raises(ValueError, match="sizes: expected at least two positive widths"):
            cls([5])
        with pytest.raises(ValueError, match="activation: expected one of"):
            cls([5, 2], activation="tanh")
        with pytest.raises(ValueError, match="weight_init_std: expected a number"):
            cls([5, 2], weight_init_std="glorot")
    with pytest.raises(ValueError, match="lr: expected a positive finite number"):
        so.SGD(lr=0)
    with pytest.raises(ValueError, match=r"grads: missing entries for parameters \['b'\]"):
        so.SGD().update({"W": np.ones(2), "b": np.ones(2)}, {"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected shape \(2,\)"):
        so.SGD().update({"W": np.ones(2)}, {"W": np.ones(3)})
    with pytest.raises(ValueError, match="h: expected a positive finite number"):
        numerical_gradient(np.sum, np.ones(2), h=0)


def test_device_errors() -> None:
    with pytest.raises(ValueError, match="device: expected one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


# every scratch layer: backward before forward, and (where the shape is known) a wrong dout
LAYERS = {
    "Affine": lambda: sl.Affine(np.ones((4, 3)), np.zeros(3)),
    "Relu": sl.Relu, "Sigmoid": sl.Sigmoid, "SoftmaxWithLoss": sl.SoftmaxWithLoss,
    "LeakyRelu": LeakyRelu, "DistillationLoss": sl.DistillationLoss,
    "BatchNormalization": lambda: sl.BatchNormalization(np.ones(4), np.zeros(4)),
    "Convolution": lambda: sl.Convolution(np.ones((2, 1, 3, 3)), np.zeros(2)),
    "Pooling": lambda: sl.Pooling(2, 2), "Pooling avg": lambda: sl.Pooling(2, 2, mode="avg"),
    "Dropout": lambda: sl.Dropout(0.5, seed=0), "Dropout eval": lambda: sl.Dropout(0.5, seed=0),
}
FORWARD_KWARGS = {"Dropout eval": {"train_flg": False}}


def test_the_contract_table_covers_every_scratch_layer() -> None:
    """Every class of ``scratch.layers`` with a ``backward`` is in LAYERS (and SHAPED, except
    the loss layers, whose dout is a scalar: test_loss_layer_backward_takes_a_scalar_dout)."""
    classes = {obj for obj in vars(sl).values()
               if isinstance(obj, type) and hasattr(obj, "backward")} | {LeakyRelu}
    covered = {type(make()) for make in LAYERS.values()}
    assert classes <= covered, sorted(c.__name__ for c in classes - covered)
    shaped = {type(LAYERS[name]()) for name in SHAPED}
    assert classes - shaped == {sl.SoftmaxWithLoss, sl.DistillationLoss}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward_says_so(name: str) -> None:
    layer = LAYERS[name]()
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}\.backward called before "
                                           rf"forward"):
        layer.backward(np.ones((2, 3)))


SHAPED = {   # layer name -> (forward input, the output's shape)
    "Affine": (np.ones((2, 4)), (2, 3)), "Relu": (np.ones((2, 4)), (2, 4)),
    "Sigmoid": (np.ones((2, 4)), (2, 4)), "LeakyRelu": (np.ones((2, 4)), (2, 4)),
    "BatchNormalization": (np.arange(8.0).reshape(2, 4), (2, 4)),
    "Convolution": (np.ones((2, 1, 5, 5)), (2, 2, 3, 3)),
    "Pooling": (np.arange(50.0).reshape(2, 1, 5, 5), (2, 1, 2, 2)),
    "Pooling avg": (np.ones((2, 1, 4, 4)), (2, 1, 2, 2)),
    "Dropout": (np.ones((2, 4)), (2, 4)), "Dropout eval": (np.ones((2, 4)), (2, 4)),
}


@pytest.mark.parametrize("name", SHAPED)
def test_backward_names_a_wrong_dout_shape(name: str) -> None:
    layer = LAYERS[name]()
    x, out_shape = SHAPED[name]
    assert layer.forward(x, **FORWARD_KWARGS.get(name, {})).shape == out_shape
    wrong = (1, *out_shape[1:])          # would broadcast silently in element-wise layers
    with pytest.raises(ValueError, match=re.escape(f"dout: expected shape {out_shape}")) as err:
        layer.backward(np.ones(wrong))
    assert f"got {wrong}" in str(err.value)
    assert layer.backward(np.ones(out_shape)).shape == x.shape


def test_torch_input_of_another_dtype_names_x_and_both_dtypes() -> None:
    model = tm.MLP.from_scratch(sm.MLP([4, 3, 2], seed=0))          # float64
    with pytest.raises(ValueError, match=re.escape(
            "x: dtype torch.float32 does not match the model's parameters (torch.float64)")):
        model(torch.ones(2, 4))
    conv = tl.Convolution(torch.ones(2, 1, 3, 3), torch.zeros(2))   # float32
    with pytest.raises(ValueError, match=r"x: dtype torch.float64 .* \(torch.float32\)"):
        conv(torch.ones(1, 1, 4, 4, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):   # autocast mixes dtypes on purpose
        assert model.float()(torch.ones(2, 4)).dtype == torch.bfloat16
