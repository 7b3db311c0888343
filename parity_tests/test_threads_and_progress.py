"""Threads and progress (issue 11, items 15 and 17): the suite runs at one thread, the
scripts default to one and say how many each side used, ``bench.py`` prints a progress line
per case and has a ``--quick`` mode, ``train.py --compile`` speaks before compiling."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from torchref.device import DEFAULT_THREADS, blas_threads, threads_line

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_threads_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module       # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_suite_runs_at_one_thread() -> None:
    """No fixture asked for: torch, NumPy's BLAS and subprocesses (OMP_NUM_THREADS) at one."""
    assert torch.get_num_threads() == 1
    assert blas_threads() in (1, None)
    assert os.environ.get("OMP_NUM_THREADS") == "1"


def test_one_thread_fixture_still_works(one_thread: None) -> None:
    assert torch.get_num_threads() == 1


def test_threads_line_names_each_side() -> None:
    assert threads_line() == (f"threads: scratch (NumPy BLAS) {blas_threads() or 'unknown'}, "
                              f"torch {torch.get_num_threads()} intra-op")
    assert threads_line(("torch",)) == f"threads: torch {torch.get_num_threads()} intra-op"
    with pytest.raises(ValueError, match="sides: expected"):
        threads_line(("jax",))


def test_scripts_default_to_one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """train.py, bench.py and demo.py ask for DEFAULT_THREADS (1) unless told otherwise."""
    assert DEFAULT_THREADS == 1
    assert load_script("train").build_parser().parse_args([]).threads == 1
    asked: list[int] = []
    for name in ("bench", "demo"):
        script = load_script(name)
        monkeypatch.setattr(script, "set_threads", lambda n: asked.append(n))
        if name == "bench":
            monkeypatch.setattr(script, "GROUPS", {})
            script.main(["--quick"])
        else:
            monkeypatch.setattr(script, "train_side_by_side", stop_here)
            with pytest.raises(StopIteration):
                script.main(["--skip-report"])
    assert asked == [1, 1]


def stop_here(*args, **kwargs):
    raise StopIteration


@pytest.mark.parametrize(("impl", "words"), [
    ("scratch", "threads: scratch (NumPy BLAS) 1\n"),
    ("both", "threads: scratch (NumPy BLAS) 1, torch 1 intra-op\n"),
    ("torch", "threads: torch 1 intra-op\n")])
@pytest.mark.parametrize("progress", [True, False])
def test_train_says_how_many_threads_each_side_used(impl: str, words: str, progress: bool,
                                                    capsys) -> None:
    """In the closing summary (beside the seconds), and first of all when progress is on."""
    flags = [] if progress else ["--no-progress"]
    load_script("train").main(["--impl", impl, "--epochs", "1", "--batch-size", "500",
                               "--device", "cpu", *flags])
    lines = capsys.readouterr().out.splitlines(keepends=True)
    summary = next(line for line in lines if line.startswith("after epoch 1: "))
    if blas_threads() is None:
        words = "threads: "
    assert summary.endswith(f"; {words}")
    assert (lines[0] == words) is progress


def test_demo_says_how_many_threads(capsys) -> None:
    load_script("demo").main(["--skip-report", "--epochs", "1", "--batch-size", "500"])
    assert capsys.readouterr().out.startswith("threads: ")


def test_compile_speaks_before_the_first_step(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The message comes before the (lazy) compilation, which happens at the first step:
    torch.compile is replaced by a wrapper that looks at the output at its first call."""
    seen: list[str] = []

    def fake_compile(net, **kwargs):
        def compiled(*args, **kw):
            if not seen:
                seen.append(capsys.readouterr().out)
            return net(*args, **kw)
        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    load_script("train").main(["--impl", "torch", "--compile", "--epochs", "1",
                               "--batch-size", "500", "--no-progress", "--device", "cpu"])
    assert seen and "torch.compile: the first step compiles the model" in seen[0]


# ----------------------------------------------------------------------------- bench.py

def toy_groups(bench: ModuleType, calls: list[str]) -> dict:
    def case(name: str, slow: bool = False):
        return bench.Case("toy", name, "float64", lambda: calls.append(f"{name} scratch"),
                          lambda: calls.append(f"{name} torch"), slow=slow)
    return {"toy": lambda: [case("fast one"), case("slow one", slow=True), case("fast two")]}


def test_bench_prints_a_progress_line_per_case(monkeypatch: pytest.MonkeyPatch, capsys,
                                               tmp_path) -> None:
    bench = load_script("bench")
    calls: list[str] = []
    monkeypatch.setattr(bench, "GROUPS", toy_groups(bench, calls))
    assert bench.main(["--repeats", "2", "--warmup", "1", "--json",
                       str(tmp_path / "b.json")]) == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("bench [")]
    assert [line.split(":")[0] for line in progress] == ["bench [1/3] toy", "bench [2/3] toy",
                                                         "bench [3/3] toy"]
    assert "slow one (float64), 1 warm-up + 2 timed calls" in progress[1]
    assert "# threads: scratch (NumPy BLAS)" in captured.out and "torch 1 intra-op" in captured.out
    assert "bench [" not in captured.out          # the table stays alone on stdout
    assert len(calls) == 3 * 2 * (1 + 2)
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["threads"] == 1 and doc["threads_line"].startswith("threads: ")
    assert [r["case"] for r in doc["rows"]] == ["fast one", "slow one", "fast two"]


def test_bench_quick_is_short_and_says_what_it_left_out(monkeypatch: pytest.MonkeyPatch,
                                                        capsys) -> None:
    bench = load_script("bench")
    calls: list[str] = []
    monkeypatch.setattr(bench, "GROUPS", toy_groups(bench, calls))
    bench.main(["--quick"])
    out = capsys.readouterr().out
    per_case = 2 * (bench.QUICK["warmup"] + bench.QUICK["repeats"])
    assert len(calls) == 2 * per_case and not any(c.startswith("slow") for c in calls)
    assert "# left out by --quick: toy: slow one (float64)" in out
    assert f"median of {bench.QUICK['repeats']} (--quick)" in out
    calls.clear()
    bench.main(["--quick", "--repeats", "3"])         # an explicit --repeats wins
    assert len(calls) == 2 * 2 * (bench.QUICK["warmup"] + 3)
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])
    assert "--repeats: expected an integer >= 1, got 0" in capsys.readouterr().err
