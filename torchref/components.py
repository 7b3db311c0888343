"""The components table: every scratch component, its torch mirror and reference, in one place.

Each entry pairs a scratch side with its torch side (so this module, like
``torchref.convert``, imports ``scratch``), names a native torch reference
where torch has one, and names its input maker (a strategy in
``torchref/testing/strategies.py``, looked up when the check runs, so importing
this table needs neither hypothesis nor the test tree).  The parity tests
(``parity_tests/test_components.py``) and ``python -m torchref.report`` both
iterate over ``COMPONENTS`` and call the same ``torchref.parity.run_parity``.

Adding a component is one block::

    register(Component(
        "tanh", scratch.functions.tanh, torchref.functions.tanh, inputs("elementwise_case"),
        native=torch.tanh, backward=lambda dout, x: dout * (1 - np.tanh(x) ** 2),
        group="functions"))

For a scratch *function* ``backward`` is its hand-derived vector-Jacobian
product ``dout -> dL/dargs`` (the formula of its docstring); a layer brings
its own ``backward`` and names its parameters (``params=("W", "b")``).
A direction that cannot be compared is skipped with its reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import scratch.batchnorm as sbn
import scratch.distillation as sd
import scratch.dropout as sdo
import scratch.functions as sf
import scratch.layers as sl
import scratch.leaky_relu as slr
import scratch.losses as sloss
import scratch.models as sm
import scratch.optim as so
import torchref.batchnorm as tbn
import torchref.distillation as td
import torchref.dropout as tdo
import torchref.functions as tf
import torchref.layers as tl
import torchref.leaky_relu as tlr
import torchref.losses as tloss
import torchref.models as tm
import torchref.optim as to
from torchref.parity import Case, Component, Sides

COMPONENTS: dict[str, Component] = {}


def register(component: Component) -> Component:
    """Add ``component`` to the table (names are unique)."""
    if component.name in COMPONENTS:
        raise ValueError(f"component: {component.name!r} is already registered")
    COMPONENTS[component.name] = component
    return component


def inputs(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    """The input maker ``torchref.testing.strategies.<name>(dtype, **kwargs)``, looked up lazily."""
    def make(dtype: Any) -> Any:
        try:
            strategies = importlib.import_module("torchref.testing.strategies")
        except ImportError as exc:   # hypothesis is an extra
            raise ImportError("torchref.components: the input makers need hypothesis; "
                              "pip install 'torchref[dev]'") from exc
        return getattr(strategies, name)(dtype, **kwargs)
    make.__name__ = name
    return make


NO_SECOND_ORDER = "a derivative itself; second derivatives are not part of the course"


# ---- hand-derived vector-Jacobian products of the scratch functions -------------------------
# (each is the gradient formula of the function's docstring, applied to an upstream dout)

def _batch(y: np.ndarray) -> int:
    return y.shape[0] if y.ndim == 2 else 1


def softmax_vjp(dout: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """ds_i/dx_j = s_i (delta_ij - s_j)  =>  dx = s * (dout - sum(dout * s))."""
    s = sf.softmax(x, axis=axis)
    return s * (dout - np.sum(dout * s, axis=axis, keepdims=True))


def log_softmax_vjp(dout: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """d log s_i / dx_j = delta_ij - s_j  =>  dx = dout - s * sum(dout)."""
    return dout - sf.softmax(x, axis=axis) * np.sum(dout, axis=axis, keepdims=True)


def mse_vjp(dout: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E = 1/(2N) sum (y - t)^2  =>  dy = (y - t) / N, dt = -(y - t) / N."""
    dy = dout * (y - t) / _batch(y)
    return dy, -dy


def cross_entropy_vjp(dout: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E = -1/N sum t log max(y, tiny)  =>  dy = -t / (N y) where y >= tiny, else 0."""
    t = sloss.as_onehot(y, t)
    tiny = np.finfo(y.dtype).tiny
    return np.where(y >= tiny, -dout * t / (_batch(y) * np.maximum(y, tiny)), 0).astype(y.dtype)


def softmax_cross_entropy_vjp(dout: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E = -1/N sum t log_softmax(a)  =>  da = (softmax(a) sum_k t_k - t) / N."""
    t = sloss.as_onehot(a, t, "logits", "t")
    return dout * (sf.softmax(a) * t.sum(axis=-1, keepdims=True) - t) / _batch(a)


# ---- the table ------------------------------------------------------------------------------

for _c in (
    Component("step_function", sf.step_function, tf.step_function, inputs("elementwise_case"),
              native=lambda x: torch.heaviside(x, torch.zeros_like(x)),
              skip={"backward": "derivative is 0 wherever it exists: nothing to compare"},
              group="functions"),
    Component("sigmoid", sf.sigmoid, tf.sigmoid, inputs("elementwise_case"),
              native=torch.sigmoid, backward=lambda dout, x: dout * sf.sigmoid_grad(x),
              group="functions"),
    Component("sigmoid_grad", sf.sigmoid_grad, tf.sigmoid_grad, inputs("elementwise_case"),
              native=lambda x: torch.ops.aten.sigmoid_backward(torch.ones_like(x),
                                                                torch.sigmoid(x)),
              skip={"backward": NO_SECOND_ORDER}, group="functions"),
    Component("relu", sf.relu, tf.relu, inputs("elementwise_case"), native=torch.relu,
              backward=lambda dout, x: dout * sf.relu_grad(x), group="functions"),
    Component("relu_grad", sf.relu_grad, tf.relu_grad, inputs("elementwise_case"),
              native=lambda x: torch.ops.aten.threshold_backward(torch.ones_like(x), x, 0),
              skip={"backward": NO_SECOND_ORDER}, group="functions"),
    Component("identity_function", sf.identity_function, tf.identity_function,
              inputs("elementwise_case"), backward=lambda dout, x: dout.copy(),
              group="functions"),
    Component("softmax", sf.softmax, tf.softmax, inputs("softmax_case"),
              native=lambda x, axis: torch.softmax(x, dim=axis), backward=softmax_vjp,
              group="functions"),
    Component("log_softmax", sf.log_softmax, tf.log_softmax, inputs("softmax_case"),
              native=lambda x, axis: F.log_softmax(x, dim=axis), backward=log_softmax_vjp,
              group="functions"),
    Component("mean_squared_error", sloss.mean_squared_error, tloss.mean_squared_error,
              inputs("mse_case"), native=lambda y, t: F.mse_loss(y, t) * y.shape[-1] / 2,
              backward=mse_vjp, grad_args=(0, 1), group="losses"),
    Component("cross_entropy_error", sloss.cross_entropy_error, tloss.cross_entropy_error,
              inputs("probabilities_case"), backward=cross_entropy_vjp, group="losses"),
    Component("softmax_cross_entropy", sloss.softmax_cross_entropy,
              tloss.softmax_cross_entropy, inputs("logits_targets_case"),
              native=lambda a, t: F.cross_entropy(a, t if t.is_floating_point() else t.long()),
              backward=softmax_cross_entropy_vjp, group="losses"),
    Component("Affine", sl.Affine, tl.Affine, inputs("affine_case"), params=("W", "b"),
              native=lambda W, b, x: F.linear(x.flatten(1), W.T, b), group="layers"),
    Component("Relu", sl.Relu, tl.Relu, inputs("elementwise_case"), native=torch.relu,
              group="layers"),
    Component("Sigmoid", sl.Sigmoid, tl.Sigmoid, inputs("elementwise_case"),
              native=torch.sigmoid, group="layers"),
    Component("SoftmaxWithLoss", sl.SoftmaxWithLoss, tl.SoftmaxWithLoss,
              inputs("logits_targets_case", one_dim=False),
              native=lambda x, t: F.cross_entropy(x, t if t.is_floating_point() else t.long()),
              group="layers"),
):
    register(_c)


# ---- the worked example of docs/README_harness.md: one block per form -----------------------

register(Component("leaky_relu", slr.leaky_relu, tlr.leaky_relu, inputs("leaky_relu_function_case"),
                   native=F.leaky_relu, group="functions",
                   backward=lambda dout, x, negative_slope: dout * slr.leaky_relu_grad(
                       x, negative_slope)))
register(Component("LeakyRelu", slr.LeakyRelu, tlr.LeakyRelu, inputs("leaky_relu_case"),
                   native=lambda slope, x: F.leaky_relu(x, slope), group="layers"))


# ---- models: built from init = (sizes, activation, seed), compared through their methods ----

def _mlp(case: Case) -> sm.MLP:
    sizes, activation, seed = case.init
    return sm.MLP(sizes, activation, seed=seed, dtype=case.args[0].dtype)


def model_runners(build: Callable[[Case], Any], mirror: Any
                  ) -> tuple[Callable[..., Sides], Callable[..., Sides]]:
    """Runners comparing a model through its methods: logits, loss and every gradient.

    ``build(case)`` makes the scratch model; the torch side is ``mirror.from_scratch`` of it.
    """
    def run_scratch(case: Case, dout_seed: int) -> Sides:
        model, (x, t) = build(case), case.args
        return ({"logits": model.predict(x), "loss": model.loss(x, t)},
                {f"d{k}": g for k, g in model.gradient(x, t).items()})

    def run_torch(case: Case, device: torch.device, dout_seed: int) -> Sides:
        tmodel = mirror.from_scratch(build(case), device=device)
        x, t = (torch.from_numpy(a).to(device) for a in case.args)
        return ({"logits": tmodel.predict(x), "loss": tmodel.loss(x, t)},
                {f"d{k}": g for k, g in tmodel.gradient(x, t).items()})
    return run_scratch, run_torch


_mlp_scratch, _mlp_torch = model_runners(_mlp, tm.MLP)


register(Component("MLP", sm.MLP, tm.MLP, inputs("mlp_parity_case"), run_scratch=_mlp_scratch,
                   run_torch=_mlp_torch, group="models"))


# ---- the CNN: convolution, pooling (torch's tie rule) and SimpleConvNet -----------------------

def _pool_native(mode: str) -> Callable[..., torch.Tensor]:
    def native(ph: int, pw: int, stride: Any, pad: Any, _mode: str, x: torch.Tensor) -> Any:
        if mode == "max":
            return F.max_pool2d(x, (ph, pw), stride, pad)
        return F.avg_pool2d(x, (ph, pw), stride, pad, count_include_pad=True)
    return native


register(Component("Convolution", sl.Convolution, tl.Convolution, inputs("convolution_case"),
                   params=("W", "b"), group="layers",
                   native=lambda W, b, stride, pad, x: F.conv2d(x, W, b, stride, pad)))
register(Component("Pooling(max)", sl.Pooling, tl.Pooling, inputs("pooling_case", mode="max"),
                   native=_pool_native("max"), group="layers"))
register(Component("Pooling(avg)", sl.Pooling, tl.Pooling, inputs("pooling_case", mode="avg"),
                   native=_pool_native("avg"), group="layers"))


def _convnet(case: Case) -> sm.SimpleConvNet:
    kwargs, seed = case.init
    return sm.SimpleConvNet(**kwargs, seed=seed, dtype=case.args[0].dtype)


_convnet_scratch, _convnet_torch = model_runners(_convnet, tm.SimpleConvNet)


register(Component("SimpleConvNet", sm.SimpleConvNet, tm.SimpleConvNet,
                   inputs("convnet_parity_case"), run_scratch=_convnet_scratch,
                   run_torch=_convnet_torch, group="models"))


# ---- knowledge distillation: the function, the layer, and the common PyTorch recipe ----------

def distillation_vjp(dout: np.ndarray, s: np.ndarray, t: np.ndarray, labels: np.ndarray,
                     temperature: float = 2.0, alpha: float = 0.5) -> np.ndarray:
    """dL/ds = [alpha T (softmax(s/T) - softmax(t/T)) + (1 - alpha)(softmax(s) - y)] / N."""
    T, y = temperature, sloss.as_onehot(s, labels)
    q, p = sf.softmax(s / T), sf.softmax(t.astype(s.dtype) / T)
    return dout * (alpha * T * (q - p) + (1 - alpha) * (sf.softmax(s) - y)) / _batch(s)


def distillation_recipe(s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                        temperature: float, alpha: float) -> torch.Tensor:
    """The common recipe, weighted: ``alpha T^2 KLDivLoss(batchmean)(log_softmax(s/T),
    softmax(t/T)) + (1 - alpha) cross_entropy(s, labels)`` (one sample as a batch of one)."""
    if s.dim() == 1:
        s, t, labels = s[None], t[None], labels[None]
    T = temperature
    kl = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
    ce = F.cross_entropy(s, labels if labels.is_floating_point() else labels.long())
    return alpha * T**2 * kl + (1 - alpha) * ce


register(Component("distillation_loss", sd.distillation_loss, td.distillation_loss,
                   inputs("distillation_loss_case"), native=distillation_recipe,
                   backward=distillation_vjp, group="losses"))
register(Component("DistillationLoss", sd.DistillationLoss, td.DistillationLoss,
                   inputs("distillation_loss_case", layer=True), group="losses",
                   native=lambda T, alpha, s, t, labels: distillation_recipe(s, t, labels, T,
                                                                             alpha)))


# ---- dropout (one keep-mask shared by both sides) and batch normalization --------------------

class SharedMaskDropout(sdo.Dropout):
    """``scratch.dropout.Dropout`` training with the given keep-mask (its ``fixed_mask``)."""

    def __init__(self, mask: np.ndarray, ratio: float, inverted: bool) -> None:
        super().__init__(ratio, inverted)
        self.fixed_mask = mask


class TorchSharedMaskDropout(tdo.Dropout):
    """``torchref.dropout.Dropout`` training with the given keep-mask (its ``fixed_mask``)."""

    def __init__(self, mask: torch.Tensor, ratio: float, inverted: bool) -> None:
        super().__init__(ratio, inverted)
        self.fixed_mask = mask


def dropout_native(mask: torch.Tensor, ratio: float, inverted: bool, x: torch.Tensor,
                   train_flg: bool) -> torch.Tensor:
    """torch's own kernels: ``F.dropout(training=False)`` in eval; in training, the masked
    scaling that ``F.dropout`` applies after drawing its mask (``aten.native_dropout_backward``:
    ``x * mask / (1 - ratio)``, differentiable), as torch cannot take a mask from outside.
    The course's convention multiplies both by ``1 - ratio``."""
    keep = 1.0 - ratio
    if train_flg:
        out = torch.ops.aten.native_dropout_backward(x, mask, 1.0 / keep)
    else:
        out = F.dropout(x, ratio, training=False)
    return out if inverted else out * keep


def batchnorm_native(gamma: torch.Tensor, beta: torch.Tensor, momentum: float,
                     running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor,
                     train_flg: bool) -> torch.Tensor:
    """``F.batch_norm`` on x flattened to (N, D): batch statistics in training, the running
    ones in eval; eps 1e-6, the course's default (the running averages are pinned in
    parity_tests/test_batchnorm.py: F.batch_norm updates running_var with the unbiased
    variance)."""
    stats = (None, None) if train_flg else (running_mean, running_var)
    return F.batch_norm(x.flatten(1), *stats, gamma, beta, training=train_flg,
                        eps=1e-6).reshape(x.shape)


for _mode, _train in (("train", True), ("eval", False)):
    register(Component(f"Dropout({_mode})", SharedMaskDropout, TorchSharedMaskDropout,
                       inputs("dropout_layer_case", train=_train), native=dropout_native,
                       group="layers"))
    register(Component(f"BatchNormalization({_mode})", sbn.BatchNormalization,
                       tbn.BatchNormalization, inputs("batchnorm_layer_case", train=_train),
                       params=("gamma", "beta"), native=batchnorm_native, group="layers"))


# ---- optimizers: "forward" = the parameter after each of 1 to 6 updates with drawn gradients --

NOT_DIFFERENTIATED = "an update step is not differentiated; forward compares its result"


def _optimizer_runners(name: str) -> tuple[Callable[..., Sides], Callable[..., Sides]]:
    def run_scratch(case: Case, dout_seed: int) -> Sides:
        (w, grads), (kwargs,) = case.args, case.init
        w, opt, after = w.copy(), so.OPTIMIZERS[name](**kwargs), []
        for g in grads:
            opt.update({"W": w}, {"W": g})
            after.append(w.copy())
        return {"W after each step": np.stack(after)}, {}

    def run_torch(case: Case, device: torch.device, dout_seed: int) -> Sides:
        (w, grads), (kwargs,) = case.args, case.init
        wt = torch.tensor(w, device=device, requires_grad=True)
        opt, after = to.OPTIMIZERS[name](**kwargs), []
        for g in grads:
            opt.update({"W": wt}, {"W": torch.from_numpy(g).to(device)})
            after.append(wt.detach().clone())
        return {"W after each step": torch.stack(after)}, {}
    return run_scratch, run_torch


for _name, _cls in so.OPTIMIZERS.items():
    _run_s, _run_t = _optimizer_runners(_name)
    register(Component(_cls.__name__, _cls, to.OPTIMIZERS[_name],
                       inputs("optimizer_steps_case", optimizer=_name), run_scratch=_run_s,
                       run_torch=_run_t, skip={"backward": NOT_DIFFERENTIATED},
                       group="optimizers"))


# ---- layer normalization, attention and the Transformer: their own module -------------------
import torchref.components_attention  # noqa: E402, F401 (registers its rows)
