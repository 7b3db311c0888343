"""The registry of components: ``COMPONENTS``, ``register`` and ``inputs``.

Every table module registers its rows here: ``torchref.components`` (the
built-in table, which imports its topical modules such as
``torchref.components_training``), and a user's own module, imported by
``python -m torchref.report --module mypkg.components``.  Importing this
module loads no component, no hypothesis and no test tree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from torchref.parity import Case, Component, Sides

COMPONENTS: dict[str, Component] = {}

NO_SECOND_ORDER = "a derivative itself; second derivatives are not part of the course"


def register(component: Component) -> Component:
    """Add ``component`` to the table (names are unique)."""
    if not isinstance(component, Component):
        raise TypeError(f"component: expected a torchref.testing.Component, "
                        f"got {type(component).__name__}")
    if component.name in COMPONENTS:
        raise ValueError(f"component: {component.name!r} is already registered")
    COMPONENTS[component.name] = component
    return component


def inputs(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    """The input maker ``torchref.testing.strategies.<name>(dtype, **kwargs)``, looked up lazily."""
    def make(dtype: Any) -> Any:
        strategies = importlib.import_module("torchref.testing.strategies")
        return getattr(strategies, name)(dtype, **kwargs)
    make.__name__ = name
    return make


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
