"""torchref.testing: the harness for verifying hand-derived components, as a library.

Install it with ``pip install 'torchref[testing]'`` (it needs hypothesis and pytest;
``import torchref`` and its components do not).  What it holds:

* ``assert_parity(scratch_fn_or_layer, torch_fn_or_module, inputs, native=..., backward=...)``:
  scratch and torch agree, forward and backward, on every input hypothesis draws;
  ``Case`` (one drawn input) and ``Component`` (one row of a components table),
  ``check_case`` / ``run_parity`` underneath, and ``register`` to add a row to the
  table ``python -m torchref.report --module mypkg.components`` prints.
* ``gradcheck``: a hand-derived gradient against float64 central differences
  (``scratch.gradient.gradcheck``), with ``GradcheckError``.
* The tolerance policy: ``assert_close``, ``tolerance``, ``POLICY`` and
  ``KNOWN_DIVERGENCES`` (where a native torch reference differs from the textbook).
* ``torchref.testing.strategies``: every input maker of the suite, composable.
* A pytest plugin (``torchref.testing.plugin``, found through the ``pytest11`` entry
  point): the ``device`` and ``parity`` fixtures and the ci/dev/thorough profiles.
"""

from scratch.gradcheck import GradcheckError, GradcheckResult, gradcheck
from torchref.parity import Case, Component, assert_parity, check_case, run_parity
from torchref.registry import COMPONENTS, register
from torchref.tolerance import (
    KNOWN_DIVERGENCES,
    POLICY,
    Divergence,
    Tolerance,
    assert_close,
    first_difference,
    tolerance,
)

__all__ = [
    "COMPONENTS", "KNOWN_DIVERGENCES", "POLICY", "Case", "Component", "Divergence",
    "GradcheckError", "GradcheckResult", "Tolerance", "assert_close", "assert_parity",
    "check_case", "first_difference", "gradcheck", "register", "run_parity", "tolerance",
]
