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


register(Component("distillation_loss(text)", sd.distillation_loss, td.distillation_loss,
                   inputs("distillation_recipe_case"), native=text_recipe,
                   backward=text_recipe_vjp, group="losses"))
register(Component("DistillationLoss(text)", sd.DistillationLoss, td.DistillationLoss,
                   inputs("distillation_recipe_case", layer=True), group="losses",
                   native=lambda T, s, t, labels: text_recipe(s, t, labels, T)))


def _builder(cls: type):
    def build(case: Case) -> object:
        kwargs, seed = case.init
        return cls(**kwargs, seed=seed, dtype=case.args[0].dtype)
    return build


for _name in ("CNN", "DeepConvNet"):
    _run_s, _run_t = model_runners(_builder(getattr(sm, _name)), getattr(tm, _name))
    register(Component(_name, getattr(sm, _name), getattr(tm, _name),
                       inputs("spec_net_parity_case", kind=_name), run_scratch=_run_s,
                       run_torch=_run_t, group="models"))
