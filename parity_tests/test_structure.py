"""The code's shape: imports point one way, no sys.path, scratch mirrored name by name.

Read from the source (``ast``), so a lazy import inside a function counts as much
as one at the top; only ``if TYPE_CHECKING:`` blocks (never run) are left out.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scratch", "torchref")


def module_files() -> dict[str, Path]:
    """Every module of the two packages: dotted name -> file."""
    out = {}
    for package in PACKAGES:
        for f in sorted((ROOT / package).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = module_files()


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports at run time (``from a import b``: a.b when that is a module)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if f"{node.module}.{a.name}" in MODULES}
    return found


def test_no_sys_path_manipulation_anywhere() -> None:
    offenders = []
    for f in sorted(ROOT.rglob("*.py")):
        if any(p.startswith(".") or p in ("build", "parity_report") for p in
               f.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"sys.path used in {offenders}"
    assert "pythonpath" not in (ROOT / "pyproject.toml").read_text()


# scratch imports NumPy and the standard library only, except where a dataset needs more.
SCRATCH_EXTRAS = {"scratch.data": {"sklearn"}}   # load_digits, inside the function (data extra)


def test_nothing_imports_the_test_tree_and_scratch_imports_only_numpy() -> None:
    for name, path in MODULES.items():
        imported = imports_of(path)
        assert not {m for m in imported if m.split(".")[0] == "parity_tests"}, name
        if name.split(".")[0] == "scratch":
            outside = ({m.split(".")[0] for m in imported} - {"numpy", "scratch"}
                       - SCRATCH_EXTRAS.get(name, set()))
            assert all(m in sys.stdlib_module_names for m in outside), (name, outside)


def test_no_import_cycles() -> None:
    graph = {name: {m for m in imports_of(path) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, chain: list[str]) -> None:
        if name in chain:
            cycle = [*chain[chain.index(name):], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*chain, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_core_needs_neither_hypothesis_nor_pytest() -> None:
    """``pip install torchref`` (no testing extra): every module outside the harness imports."""
    harness = ("torchref.parity", "torchref.registry", "torchref.components", "torchref.report",
               "torchref.testing")
    core = [m for m in MODULES if not m.startswith(harness)]
    code = ("import sys\nsys.modules['hypothesis'] = sys.modules['pytest'] = None\n"
            "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in core))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# Modules of scratch whose torch side is not a module of the same name, and why.
NOT_MIRRORED = {
    "scratch.gradcheck": "its torch side is torch.autograd.gradcheck itself",
    "scratch.data": "data loading: torchref.data wraps the arrays it returns into tensors",
    "scratch.training": "the training loop: torchref.lockstep runs both sides",
    "scratch.init": "torch's side is nn.init (torchref.init.init_weight_, in place)",
    "scratch.checkpoints": "checkpoint pointer, names and hashes: file handling (stdlib only) "
                           "that both sides' checkpoints use as it is",
    "scratch.runlock": "the run folder's lock: file handling (stdlib only) for both sides",
    "scratch.winograd": "an internal algorithm of scratch.conv.Convolution (its Winograd path); "
                        "the mirror is F.conv2d itself, compared in test_winograd.py",
    "scratch.augment": "data preparation before the sides split: the images are resized once "
                       "and each batch shifted in NumPy, and both sides train on those arrays "
                       "(upsample_bilinear is compared with torch's F.interpolate in "
                       "test_augment.py)",
}


def mirrored_modules() -> list[str]:
    return [m for m in MODULES if m.startswith("scratch.") and not m.split(".")[-1].startswith("_")
            and m not in NOT_MIRRORED]


@pytest.mark.parametrize("name", mirrored_modules())
def test_every_public_name_of_scratch_has_a_mirror(name: str) -> None:
    """A public name of ``scratch.X`` is a component mirrored in ``torchref.X``, or the
    hand-derived backward ``f_backward`` of a mirrored ``f`` (its torch side is autograd,
    compared in the components table); helpers are private or in ``scratch._arrays``."""
    ours = importlib.import_module(name)
    theirs = importlib.import_module(name.replace("scratch.", "torchref.", 1))
    public = [n for n, v in vars(ours).items() if not n.startswith("_")
              and (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == name]
    missing = [n for n in public if not hasattr(theirs, n)
               and not (n.endswith("_backward") and hasattr(theirs, n[:-len("_backward")]))]
    assert not missing, f"{name}: no mirror in {theirs.__name__} for {missing}"
