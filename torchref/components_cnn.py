"""Components of issue 13 in the table of ``torchref.components``: the deeper CNNs and the
distillation loss with its new default (the reference text's recipe).

Imported by one line at the bottom of ``torchref.components``; registering here keeps
that module's table in one place while this file grows separately.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import scratch.distillation as sd
import scratch.models as sm
import torchref.distillation as td
import torchref.models as tm
from torchref.parity import Case, Component
from torchref.registry import inputs, model_runners, register


def text_recipe(s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """The reference text's loss, in its own ops: ``KLDivLoss(batchmean)(log_softmax(s/T),
    softmax(t/T)) * T^2 + cross_entropy(s, labels)`` (one sample as a batch of one)."""
    if s.dim() == 1:
        s, t, labels = s[None], t[None], labels[None]
    T = temperature
    kl = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / T, dim=-1),
                                                   F.softmax(t / T, dim=-1))
    return kl * T**2 + F.cross_entropy(s, labels if labels.is_floating_point()
                                       else labels.long())


def text_recipe_vjp(dout: np.ndarray, s: np.ndarray, t: np.ndarray, labels: np.ndarray,
                    temperature: float = 2.0) -> np.ndarray:
    """dL/ds = dout [T (softmax(s/T) - softmax(t/T)) + softmax(s) - y] / N: the scratch
    layer's hand-derived backward (``scratch.distillation.DistillationLoss``)."""
    layer = sd.DistillationLoss(temperature)
    layer.forward(s, t, labels)
    return layer.backward(dout)


# ---- pinned non-finite edges (Component.examples; parity_tests/test_components.py) ---------------

inf, nan = np.inf, np.nan
_s = np.array([[-inf, 0.0, 1.0], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [-inf, -inf, 0.0]])
_t = np.array([[0.0, inf, 1.0], [1.0, 0.0, -1.0], [0.5, nan, 0.0], [1.0, 2.0, 0.0]])
# (no -inf teacher logit: torch's two KL forms disagree there, see torchref.tolerance)
_labels = np.array([1, 2, 1, 2])
DISTILLATION_EDGES = ((_s, _t, _labels), (_s[[0, 3]], _t[[1, 3]], _labels[[0, 3]]),
                      (_s, _t, np.eye(3)[_labels]))


def net_edges(kind: str) -> tuple[Case, ...]:
    """A batch of two: one image with +inf, -inf and NaN pixels, one finite (smallest images)."""
    side = {"CNN": 6, "DeepConvNet": 4}[kind]
    x = np.linspace(-1.0, 1.0, 2 * side * side).reshape(2, 1, side, side)
    x[0, 0, 0, :3] = (inf, -inf, nan)
    kwargs = {"in_shape": (1, side, side), "hidden_size": 2, "output_size": 2,
              "use_dropout": False, "weight_decay_lambda": 0.0, "weight_init_std": "he"}
    return (Case((x, np.array([0, 1])), (kwargs, 0)),)


register(Component("distillation_loss(text)", sd.distillation_loss, td.distillation_loss,
                   inputs("distillation_recipe_case"), native=text_recipe,
                   backward=text_recipe_vjp, group="losses", examples=tuple(
                       Case(a, kwargs={"temperature": 2.0}) for a in DISTILLATION_EDGES)))
register(Component("DistillationLoss(text)", sd.DistillationLoss, td.DistillationLoss,
                   inputs("distillation_recipe_case", layer=True), group="losses",
                   native=lambda T, s, t, labels: text_recipe(s, t, labels, T),
                   examples=tuple(Case(a, (2.0,)) for a in DISTILLATION_EDGES)))


def _builder(cls: type):
    def build(case: Case) -> object:
        kwargs, seed = case.init
        return cls(**kwargs, seed=seed, dtype=case.args[0].dtype)
    return build


for _name in ("CNN", "DeepConvNet"):
    _run_s, _run_t = model_runners(_builder(getattr(sm, _name)), getattr(tm, _name))
    register(Component(_name, getattr(sm, _name), getattr(tm, _name),
                       inputs("spec_net_parity_case", kind=_name), run_scratch=_run_s,
                       run_torch=_run_t, group="models", examples=net_edges(_name)))
