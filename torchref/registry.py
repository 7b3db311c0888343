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

from torchref.parity import Component

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
