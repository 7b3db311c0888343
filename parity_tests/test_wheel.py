"""The harness from ``pip install``: build the wheel, install it into a new virtual environment
outside the checkout (torch from the same pin), and use it from a small user project.

The project is the one of the README's "Verify your own component" (its files read from
there): a Softplus with a hand-derived backward, once right and once with the planted bug
(sigmoid(-x) for sigmoid(x)); it runs what that section shows: pytest with the plugin
(``parity`` fixture, ``torchref.testing.gradcheck``) and ``python -m torchref.report --module``.

Slow: a venv, a torch install and four torch start-ups, about 65 s of CPU; on the shared
2-core machine that was 4.5 minutes of wall time (load average 12).  So it is opt-in:
``TORCHREF_WHEEL_TEST=1`` (``make test-wheel``; ``.ci/run`` sets it, so CI runs it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

README = (ROOT / "README.md").read_text()
# the user project of the README's "Verify your own component": every ``` block whose first
# line names a file of it (``# mypkg/softplus.py``), written as it stands
FILES = dict(re.findall(r"^```\n# ((?:mypkg|tests)/\S+\.py)\n(.*?)^```", README, flags=re.S | re.M))
# the README's planted bug: sigmoid(-x) for sigmoid(x) in softplus_backward
RIGHT, WRONG = "np.exp(-np.logaddexp(0, -x))", "np.exp(-np.logaddexp(0, x))"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def write_project(project: Path, bug: bool) -> None:
    for name, text in FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text.replace(RIGHT, WRONG) if bug else text)
    (project / "mypkg" / "__init__.py").write_text("")


def test_the_readme_holds_the_user_project() -> None:
    assert set(FILES) == {"mypkg/softplus.py", "mypkg/components.py", "tests/test_softplus.py"}
    assert FILES["mypkg/softplus.py"].count(RIGHT) == 1


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TORCHREF_WHEEL_TEST") != "1",
                    reason="builds and installs the wheel in a new venv (minutes): opt in with "
                           "TORCHREF_WHEEL_TEST=1 (make test-wheel; CI does)")
def test_the_wheel_in_a_new_environment(tmp_path: Path) -> None:
    # 1. the wheel, built from a copy of the sources (nothing written into the checkout)
    src = tmp_path / "src"
    for name in ("scratch", "torchref"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w",
                 str(tmp_path / "dist"), str(src)], tmp_path, env)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("torchref-*.whl")

    # 2. a new virtual environment outside the checkout, torch from the same pin (this pip
    #    installs into it: no pip of its own, no .pyc compiled ahead: both only cost time)
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path,
               env).returncode == 0
    python = str(venv / "bin" / "python")
    pin = "torch==" + torch.__version__.split("+")[0]
    installed = run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                     "--no-compile", "--disable-pip-version-check", pin,
                     f"torchref[testing] @ {wheel.as_uri()}"], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-3000:]

    # 3. the user's project; its torchref is the installed wheel, not the checkout
    project = tmp_path / "project"
    write_project(project, bug=False)
    where = run([python, "-c", "import importlib.util as u; print(u.find_spec('torchref.testing"
                 ".plugin').origin, u.find_spec('torchref.report').origin)"], project, env)
    assert where.stdout.count(str(venv)) == 2 and str(ROOT) not in where.stdout, where

    pytest_args = [python, "-m", "pytest", "-p", "no:cacheprovider", "--torchref-profile", "ci",
                   "tests"]
    report_args = [python, "-m", "torchref.report", "--module", "mypkg.components", "--only",
                   "Softplus", "--examples", "5", "--no-progress", "--out", "report"]
    right = run(pytest_args, project, env)
    assert right.returncode == 0, right.stdout[-3000:]
    assert re.search(r"2 passed(, \d+ skipped)? in", right.stdout)   # CUDA: skipped if absent
    report = run(report_args, project, env)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert "Softplus" in report.stdout and "FAIL" not in report.stdout

    # 4. the planted bug: red, with the shrunk input and the first differing element
    write_project(project, bug=True)
    wrong = run(pytest_args, project, env)
    assert wrong.returncode == 1
    assert re.search(r"2 failed(, \d+ skipped)? in", wrong.stdout), wrong.stdout[-3000:]
    assert "first differing element at index (0, 0)" in wrong.stdout
    assert re.search(r"parity_check\(.*case=\w+\((args=\()?array\(\[\[", wrong.stdout, flags=re.S)
    assert "GradcheckError: gradcheck FAILED" in wrong.stdout
    report = run(report_args, project, env)
    assert report.returncode == 1, report.stdout[-3000:] + report.stderr[-3000:]
    assert "FAIL Softplus backward" in report.stdout
    assert "shrunk failing input: Case(args=(array([[" in report.stdout
