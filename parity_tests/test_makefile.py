"""The Makefile's set-up logic, run for real against a stand-in Python that only records its
calls (nothing is downloaded or installed): a changed TORCH_SPEC reinstalls torch, an
unchanged one does nothing, later targets keep the recorded spec (issue 11, item 13), and
``setup-vision`` installs torch and torchvision as one matching pair (item 14)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import scratch.data as sd
import torchref.data as td

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not on PATH")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A folder shaped like a venv whose bin/python appends its arguments to calls.log."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../calls.log"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path / "venv"


def make(venv: Path, *args: str, env: dict | None = None) -> list[str]:
    """Run ``make VENV=venv args`` in the checkout; the stand-in Python's new calls."""
    log = venv / "calls.log"
    before = log.read_text().splitlines() if log.exists() else []
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TORCH_SPEC", "MAKEFLAGS", "MFLAGS")}
    proc = subprocess.run([MAKE, "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", *args],
                          capture_output=True, text=True, env={**environ, **(env or {})},
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = log.read_text().splitlines() if log.exists() else []
    return after[len(before):]


def installs(calls: list[str]) -> list[str]:
    return [c.removeprefix("-m pip install --quiet ") for c in calls
            if c.startswith("-m pip install")]


def test_changed_torch_spec_reinstalls_and_unchanged_does_nothing(venv: Path) -> None:
    assert installs(make(venv, "setup")) == ["torch==2.13.0", "-e .[dev,data]"]
    assert make(venv, "setup") == []                              # up to date
    assert make(venv, "setup", "TORCH_SPEC=torch==2.13.0") == []  # same spec given: nothing
    assert installs(make(venv, "setup", "TORCH_SPEC=torch==2.14.1")) == [
        "torch==2.14.1", "-e .[dev,data]"]
    assert (venv / ".torch-spec").read_text().strip() == "torch==2.14.1"
    assert make(venv, "setup") == []             # no TORCH_SPEC: the recorded one is kept
    # the environment counts as giving it, like the command line
    assert installs(make(venv, "setup", env={"TORCH_SPEC": "torch>=2.2"})) == [
        "torch>=2.2", "-e .[dev,data]"]


def test_setup_vision_installs_the_matching_pair_and_keeps_it(venv: Path) -> None:
    make(venv, "setup")
    calls = installs(make(venv, "setup-vision"))
    assert calls == ["torch==2.14.1 torchvision==0.29.1", "-e .[dev,data]"]
    assert make(venv, "setup") == []             # a later plain target keeps the pair


def test_spec_record_is_rewritten_only_when_the_spec_changes(venv: Path) -> None:
    make(venv, "setup")
    record = venv / ".torch-spec"
    before = record.stat().st_mtime_ns
    assert make(venv, "setup") == [] and record.stat().st_mtime_ns == before


def test_no_extra_can_replace_the_pinned_torch() -> None:
    """`pip install -e ".[X]"` must keep the torch that TORCH_SPEC installed: no extra names
    torch or torchvision (torchvision pulls the torch release it was built for)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11+")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra, reqs in extras.items():
        for req in reqs:
            name = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()
            assert name not in ("torch", "torchvision"), f"extra {extra!r} installs {req!r}"


def test_vision_pair_is_the_same_everywhere() -> None:
    """The Makefile's VISION_SPEC and the pair that both messages name agree."""
    line = re.search(r"^VISION_SPEC \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert line is not None
    assert tuple(line.group(1).split()) == sd.TORCHVISION_PAIR == td.TORCHVISION_PAIR


def test_bench_passes_its_arguments(venv: Path) -> None:
    make(venv, "setup")
    assert make(venv, "bench", "BENCH_ARGS=--quick --only mlp") == [
        "scripts/bench.py --quick --only mlp"]
