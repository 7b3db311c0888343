"""torchref.testing as a user meets it: the pytest plugin, failure messages, report --module.

The plugin tests run pytest on a user's test file (pytester, pytest's own fixture)
with nothing but the installed plugin: no conftest, no checkout on the path.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import torchref.testing as tt
from torchref.parity import report_settings
from torchref.testing import strategies as S

pytest_plugins = ["pytester"]


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)


def softplus_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dout * np.exp(-np.logaddexp(0, -x))          # sigmoid(x), hand-derived


def test_the_public_api() -> None:
    assert tt.gradcheck(lambda x: (x ** 3).sum(), np.ones((2, 2)), lambda x: 3 * x ** 2)
    assert tt.tolerance(np.float64).rtol == 1e-9 and "float32" in tt.POLICY
    assert {d.name for d in tt.KNOWN_DIVERGENCES} >= {"softplus threshold", "Adam eps placement"}
    with pytest.raises(TypeError, match=r"component: expected a torchref\.testing\.Component"):
        tt.register("softplus")


def test_first_difference_names_index_values_and_allowed_error() -> None:
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = expected.copy()
    assert tt.first_difference(actual, expected) == ""
    actual[1, 0] += 1e-6
    actual[1, 1] += 1.0
    msg = tt.first_difference(actual, expected)
    assert msg.startswith("first differing element at index (1, 0): 3.000001")
    assert "vs 3.0 (expected)" in msg and "> allowed 3.01e-09" in msg


def test_first_difference_skips_nan_positions_on_both_sides() -> None:
    """NaN on both sides is equal under the policy: the first difference is the -inf."""
    expected = np.array([np.nan, np.nan, -np.inf])
    msg = tt.first_difference(np.full(3, np.nan), expected)
    assert msg.startswith("first differing element at index (2,): nan vs -inf (expected)")


def test_a_failure_names_the_shrunk_input_and_the_first_difference() -> None:
    bad = tt.Component("softplus", softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x)),
                       S.elementwise_case, backward=lambda dout, x: -softplus_backward(dout, x))
    stats = tt.run_parity(bad, "cpu", np.float64, report_settings(10))
    assert not stats.directions["backward"].passed and stats.directions["forward"].passed
    assert stats.failure.startswith("shrunk failing input: Case(args=(array([[0.]]),)")
    found = re.search(r"backward dx: torchref vs scratch: first differing element at index "
                      r"\(0, 0\): (\S+) vs (\S+) \(expected\), \|difference\| \S+ > allowed",
                      stats.directions["backward"].failure)
    assert found and float(found[1]) == -float(found[2]) != 0     # the planted sign


# softplus's native reference is linear above threshold 20: its gradient is exactly 1 there,
# sigmoid(20.5) = 1 - 1.25e-9 (a float64 difference above the policy's 1e-9)
PAST_THRESHOLD = st.builds(lambda x: tt.Case((np.array([x]),)), st.floats(20.5, 30.0))


def test_a_native_reference_known_to_differ_is_named_in_the_failure() -> None:
    with pytest.raises(AssertionError, match=r"known to differ here \(softplus threshold\)"):
        tt.assert_parity(softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x)),
                         PAST_THRESHOLD, backward=softplus_backward, native=F.softplus,
                         device="cpu")
    # the advice of the note works: a threshold above where sigmoid rounds to 1
    tt.assert_parity(softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x)),
                     PAST_THRESHOLD, backward=softplus_backward,
                     native=lambda x: F.softplus(x, threshold=40), device="cpu")


def test_a_failure_against_the_mirror_names_no_divergence() -> None:
    with pytest.raises(AssertionError) as exc:
        tt.assert_parity(softplus, F.softplus, PAST_THRESHOLD, backward=softplus_backward,
                         device="cpu")
    assert "backward dx: torchref vs scratch" in str(exc.value)
    assert "known to differ" not in str(exc.value)


USER_TEST = '''
import numpy as np
import torch
from torchref.testing import strategies as S


def softplus(x):
    return np.logaddexp(0, x)


def backward(dout, x):
    return dout * np.exp(-np.logaddexp(0, {sign}x))


def test_softplus(parity, device):
    assert device.type in ("cpu", "cuda")
    parity(softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x)), S.elementwise_case,
           backward=backward)
'''


def test_the_plugin_in_a_user_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_right=USER_TEST.format(sign="-"),
                        test_wrong=USER_TEST.format(sign=""))
    result = pytester.runpytest("--torchref-profile", "ci", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, skipped=0 if torch.cuda.is_available() else 2)
    out = result.stdout.str()
    assert "torchref: hypothesis profile ci" in out
    assert "test_wrong.py::test_softplus[cpu] FAILED" in out or "FAILED test_wrong.py" in out
    assert re.search(r"(Failing test case|Falsifying example): parity_check\(\s+"
                     r".*case=\w+\((args=\()?array\(\[\[", out, flags=re.S)  # the shrunk input
    assert "backward dx: torchref vs scratch: first differing element" in out


def test_the_profile_option_and_variable_are_checked(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--torchref-profile", "nope")
    assert result.ret != 0 and "invalid choice: 'nope'" in result.stderr.str()
    monkeypatch.setenv("TORCHREF_HYPOTHESIS_PROFILE", "fast")
    result = pytester.runpytest()
    assert result.ret != 0
    assert "TORCHREF_HYPOTHESIS_PROFILE: expected one of ('ci', 'dev', 'thorough'), got 'fast'" \
        in result.stderr.str()


USER_COMPONENTS = '''
import numpy as np
import torch
from torchref.testing import Component, register
from torchref.testing import strategies as S


def softplus(x):
    return np.logaddexp(0, x)


def torch_softplus(x):
    return torch.logaddexp(x, torch.zeros_like(x))


register(Component("Softplus", softplus, torch_softplus, S.elementwise_case,
                   backward=lambda dout, x: dout * np.exp(-np.logaddexp(0, -x))))
register(Component("WrongSoftplus", softplus, torch_softplus, S.elementwise_case,
                   dtypes=(np.float64,),
                   backward=lambda dout, x: dout * np.exp(-np.logaddexp(0, x))))
'''


def test_report_module_registers_a_users_components(tmp_path: Path) -> None:
    (tmp_path / "mycomponents.py").write_text(textwrap.dedent(USER_COMPONENTS))
    done = subprocess.run(
        [sys.executable, "-m", "torchref.report", "--module", "mycomponents", "--only",
         "Softplus", "WrongSoftplus", "--examples", "5", "--out", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if "Softplus " in line]
    assert [(r[0], r[1], r[-1]) for r in rows if r[3] == "float64"] == [
        ("Softplus", "forward", "PASS"), ("Softplus", "backward", "PASS"),
        ("WrongSoftplus", "forward", "PASS"), ("WrongSoftplus", "backward", "FAIL")]
    assert "shrunk failing input: Case(args=(array([[" in done.stdout
    assert "first differing element at index (0, 0)" in done.stdout


def test_every_public_strategy_is_documented_and_exported() -> None:
    doc = S.__doc__ or ""
    assert [n for n in S.__all__ if f"``{n}" not in doc] == []
    assert [n for n in S.__all__ if not hasattr(S, n)] == []
