"""Run scripts/train.py as a user does (a subprocess) or its ``main`` in this process, and read
what it leaves in --out: shared by test_checkpoints.py and test_run_folder.py."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train.py"
SCRATCH = ["--impl", "scratch", "--no-progress"]


def train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python scripts/train.py ARGS`` in a fresh process, output captured (not a terminal)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def main_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """``scripts/train.py``'s ``main(args)`` here: (exit status, stdout, stderr)."""
    try:
        load_script().main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def pointer(out: Path) -> dict:
    return json.loads((out / "checkpoints" / "latest.json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def assert_usage_error(code: int, err: str, *words: str) -> None:
    """Exit status 2, argparse's usage line, no traceback, and each of ``words`` in stderr."""
    assert code == 2 and "usage: " in err and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def copy_run(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


def load_script():
    """scripts/train.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script
