"""Every component of the table (torchref.components), forward and backward, every device and dtype.

This is the same check ``python -m torchref.report`` prints (``run_parity``):
a red row in the report is a red test here, and the other way round.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import NoSuchExample

import scratch.embedding as semb
import scratch.layers as sl
import torchref.tolerance as tolerance
from torchref.components import COMPONENTS, register
from torchref.components_rnn import layer_scratch_runner
from torchref.parity import (
    Case,
    Component,
    _dout,
    assert_parity,
    check_case,
    report_settings,
    run_parity,
)
from torchref.testing import strategies as S

CASES = [pytest.param(c, np.dtype(dt), id=f"{name}-{np.dtype(dt).name}")
         for name, c in COMPONENTS.items() for dt in c.dtypes]


EDGES = S.edge_examples()        # the built-ins' pinned edges; topical modules carry their own
pinned_edges = S.pinned_edges    # EDGES.get(name, ()) + component.examples


@pytest.mark.parametrize(("component", "dtype"), CASES)
def test_component_parity(component: Component, dtype: np.dtype, device: torch.device) -> None:
    """Drawn cases, after the component's pinned non-finite edges (``pinned_edges``)."""
    component = dataclasses.replace(component, examples=pinned_edges(component))
    stats = run_parity(component, device, dtype, raise_on_failure=True)
    assert stats.passed and stats.examples > 0
    for direction, s in stats.directions.items():
        assert s.skipped or s.compared > 0, f"{direction}: nothing was compared"


def _non_finite(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f" and not np.isfinite(value).all()
    if isinstance(value, dict | tuple | list):
        items = value.values() if isinstance(value, dict) else value
        return any(_non_finite(v) for v in items)
    return False


def test_every_component_has_pinned_non_finite_edges() -> None:
    """Pinned edges from ``S.edge_examples`` (built-ins) or ``Component.examples`` (topical and
    users' modules), one at least with +inf/-inf/NaN in its inputs or its upstream gradient;
    or a reasoned ``skip["nonfinite"]``, documented in ``torchref.tolerance``."""
    assert sorted(set(EDGES) - set(COMPONENTS)) == []
    policy = " ".join(tolerance.__doc__.split())
    missing = []
    for name, c in COMPONENTS.items():
        if "nonfinite" in c.skip:
            assert name in policy, f"{name}: its non-finite skip is not in the tolerance policy"
            continue
        if not any(e.dout_edges or _non_finite((e.args, e.init, e.kwargs))
                   for e in pinned_edges(c)):
            missing.append(name)
    assert missing == []


def test_every_component_draws_non_finite_values() -> None:
    """Issue 11 item 7: the drawn cases of every row (not only its pinned edges) reach
    +inf/-inf/NaN in an input or in the upstream gradient, unless ``skip["nonfinite"]``."""
    quick = settings(max_examples=200, database=None, derandomize=True, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))
    never = []
    for name, c in COMPONENTS.items():
        if "nonfinite" in c.skip:
            continue
        try:
            find(c.strategy(np.float64),
                 lambda e: e.dout_edges or _non_finite((e.args, e.init, dict(e.kwargs))),
                 settings=quick)
        except NoSuchExample:
            never.append(name)
    assert never == []


def test_every_skip_names_its_reason() -> None:
    for c in COMPONENTS.values():
        for direction, reason in c.skip.items():
            assert direction in ("forward", "backward", "nonfinite") and len(reason) > 10, \
                (c.name, direction)


def test_register_rejects_a_duplicate_name() -> None:
    with pytest.raises(ValueError, match="'relu' is already registered"):
        register(COMPONENTS["relu"])


# ---- the harness catches what it should (and says where) --------------------------------------

class HalfBiasAffine(sl.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.db = self.db / 2                      # a planted bug in one parameter gradient
        return dx


class InPlaceRelu(sl.Relu):
    def backward(self, dout):
        dout[~self.mask] = 0                       # the course's in-place version
        return dout


def test_a_wrong_parameter_gradient_fails_and_shrinks() -> None:
    bad = dataclasses.replace(COMPONENTS["Affine"], scratch=HalfBiasAffine)
    stats = run_parity(bad, "cpu", np.float64, report_settings(10))
    assert stats.directions["forward"].passed and not stats.directions["backward"].passed
    assert "backward db: torchref vs scratch" in stats.failure
    assert "Case(args=(array([[0.]]),)" in stats.failure     # shrunk to the smallest input


@given(x=S.elementwise_case(np.float64))
def test_backward_must_not_modify_dout(x: Case) -> None:
    comparisons = check_case(dataclasses.replace(COMPONENTS["Relu"], scratch=InPlaceRelu), x,
                             "cpu", dout_seed=1)
    if (x.args[0] <= 0).any():
        assert any("modified its argument dout" in c.message for c in comparisons)


def test_assert_parity_for_a_user_function(device: torch.device) -> None:
    """The few-line form: scratch function, its mirror, inputs, hand-derived backward."""
    assert_parity(np.tanh, torch.tanh, S.elementwise_case,
                  backward=lambda dout, x: dout * (1 - np.tanh(x) ** 2), device=device)
    with pytest.raises(AssertionError, match="backward dx"):
        assert_parity(np.tanh, torch.tanh, S.elementwise_case, device=device,
                      dtypes=[np.float64], backward=lambda dout, x: dout * (1 + np.tanh(x) ** 2))


def test_assert_parity_needs_a_backward_or_a_skip() -> None:
    with pytest.raises(ValueError, match="backward: tanh is a function"):
        assert_parity(np.tanh, torch.tanh, S.elementwise_case)


def test_a_layer_runner_gives_scratch_the_cases_non_finite_upstream_gradient() -> None:
    """``layer_scratch_runner`` (recurrent rows) passes ``Case.dout_edges`` on, as the
    generic runner does: both sides see the same non-finite dout."""
    case = Case((np.array([[0, 1]]),), (np.ones((2, 3)),), dout_edges=True)
    _, grads = layer_scratch_runner(semb.Embedding, ("W",), None)(case, 1)
    dout = _dout(np.ones((1, 2, 3)), 1, edges=True)
    assert not np.isfinite(dout).all()
    np.testing.assert_array_equal(grads["dW"], dout[0])
