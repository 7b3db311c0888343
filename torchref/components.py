"""The components table: every scratch component, its torch mirror and reference, in one place.

Each entry pairs a scratch side with its torch side (so this module, like
``torchref.convert``, imports ``scratch``), names a native torch reference
where torch has one, and names its input maker (a strategy of
``torchref.testing.strategies``, looked up when the check runs).  The parity
tests (``parity_tests/test_components.py``) and ``python -m torchref.report``
both iterate over ``COMPONENTS`` and call the same ``torchref.parity.run_parity``.

Adding a component is one block::

    register(Component(
        "tanh", scratch.functions.tanh, torchref.functions.tanh, inputs("elementwise_case"),
        native=torch.tanh, backward=scratch.functions.tanh_backward, group="functions"))

For a scratch *function* ``backward`` is its hand-derived vector-Jacobian
product ``(dout, *args) -> dL/dargs``, which lives in ``scratch`` beside the
forward (``scratch.functions.softmax_backward``); a layer brings its own
``backward`` and names its parameters (``params=("W", "b")``).  A direction
that cannot be compared is skipped with its reason.  Rows of a topic live in
their own module (``torchref.components_training``), named in
``TOPICAL_MODULES`` at the end of this file; each registers through
``torchref.registry`` as a user's own module does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import scratch.distillation as sd
import scratch.functions as sf
import scratch.layers as sl
import scratch.leaky_relu as slr
import scratch.losses as sloss
import scratch.models as sm
import torchref.distillation as td
import torchref.functions as tf
import torchref.layers as tl
import torchref.leaky_relu as tlr
import torchref.losses as tloss
import torchref.models as tm
from torchref.parity import Case, Component
from torchref.registry import COMPONENTS as COMPONENTS  # re-export
from torchref.registry import NO_SECOND_ORDER, inputs, model_runners, register

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
              backward=lambda dout, x: np.where(sf.relu_grad(x) != 0, dout, 0).astype(x.dtype),
              group="functions"),
    Component("relu_grad", sf.relu_grad, tf.relu_grad, inputs("elementwise_case"),
              native=lambda x: torch.ops.aten.threshold_backward(torch.ones_like(x), x, 0),
              skip={"backward": NO_SECOND_ORDER}, group="functions"),
    Component("identity_function", sf.identity_function, tf.identity_function,
              inputs("elementwise_case"), backward=lambda dout, x: dout.copy(),
              group="functions"),
    Component("softmax", sf.softmax, tf.softmax, inputs("softmax_case"),
              native=lambda x, axis: torch.softmax(x, dim=axis), backward=sf.softmax_backward,
              group="functions"),
    Component("log_softmax", sf.log_softmax, tf.log_softmax, inputs("softmax_case"),
              native=lambda x, axis: F.log_softmax(x, dim=axis), backward=sf.log_softmax_backward,
              group="functions"),
    Component("mean_squared_error", sloss.mean_squared_error, tloss.mean_squared_error,
              inputs("mse_case"), native=lambda y, t: F.mse_loss(y, t) * y.shape[-1] / 2,
              backward=sloss.mean_squared_error_backward, grad_args=(0, 1), group="losses"),
    Component("cross_entropy_error", sloss.cross_entropy_error, tloss.cross_entropy_error,
              inputs("probabilities_case"), backward=sloss.cross_entropy_error_backward,
              group="losses"),
    Component("softmax_cross_entropy", sloss.softmax_cross_entropy,
              tloss.softmax_cross_entropy, inputs("logits_targets_case"),
              native=lambda a, t: F.cross_entropy(a, t if t.is_floating_point() else t.long()),
              backward=sloss.softmax_cross_entropy_backward, group="losses"),
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
                   backward=sd.distillation_loss_backward, group="losses"))
register(Component("DistillationLoss", sd.DistillationLoss, td.DistillationLoss,
                   inputs("distillation_loss_case", layer=True), group="losses",
                   native=lambda T, alpha, s, t, labels: distillation_recipe(s, t, labels, T,
                                                                             alpha)))


# ---- the topical tables: each module registers its own rows (keep this file short) ----------

TOPICAL_MODULES = ("torchref.components_training", "torchref.components_rnn",
                   "torchref.components_cnn", "torchref.components_attention")
for _module in TOPICAL_MODULES:
    importlib.import_module(_module)
