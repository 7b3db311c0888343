"""Benchmarks: scratch (NumPy) vs torch on the CPU, measured side by side in one run.

Each case times the scratch side and the torch side alternately (one call of
each per repeat, after warm-up), with the same number of threads for NumPy's
BLAS (threadpoolctl) and for torch, and prints the medians and the ratio
scratch / torch (below 1.0: scratch is faster).  Results go to stdout and,
with ``--json``, to a file; a progress line per case goes to stderr.  The cases
and their groups are in ``torchref/bench_cases.py`` (add a group there).

One thread per side by default: on a shared or busy machine more threads only
contend, and torch suffers most (BENCHMARKS.md, "Threads").

    python scripts/bench.py                   # every group (several minutes)
    python scripts/bench.py --quick           # fewer repeats, no slow cases (about a minute)
    python scripts/bench.py --only mlp --repeats 50
    python scripts/bench.py --only cnn --threads 2
    python scripts/bench.py --only rnn
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from scratch._atomic import write_text_atomic
from scratch.runlock import usable_file
from torchref.bench_cases import GROUPS, Case
from torchref.device import DEFAULT_THREADS, set_threads, threads_line

QUICK = {"repeats": 5, "warmup": 1}   # --quick: these, and no case marked slow


def time_pair(case: Case, repeats: int, warmup: int) -> tuple[float, float]:
    """Median seconds of each side, the two sides alternating call by call."""
    for _ in range(warmup):
        case.scratch()
        case.torch()
    ts, tt = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        case.scratch()
        t1 = time.perf_counter()
        case.torch()
        t2 = time.perf_counter()
        ts.append(t1 - t0)
        tt.append(t2 - t1)
    return statistics.median(ts), statistics.median(tt)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, numpy {np.__version__}, torch {torch.__version__}"


def progress(message: str) -> None:
    """A progress line on stderr (the results table stays alone on stdout)."""
    print(message, file=sys.stderr, flush=True)


def collect(groups: list[str], quick: bool) -> tuple[list[Case], list[Case]]:
    """(cases to time, cases left out by --quick), building each group with a progress line."""
    cases: list[Case] = []
    for group in groups:
        progress(f"bench: preparing group {group} ...")
        cases += GROUPS[group]()
    if not quick:
        return cases, []
    return [c for c in cases if not c.slow], [c for c in cases if c.slow]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--only", nargs="+", choices=sorted(GROUPS), default=None, metavar="GROUP",
                   help=f"groups to run, one or more of {', '.join(GROUPS)} (default: all)")
    p.add_argument("--quick", action="store_true",
                   help=f"a short run: {QUICK['repeats']} repeats, {QUICK['warmup']} warm-up, "
                        f"cases marked slow left out (explicit --repeats/--warmup win)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per side, the median is reported (default: 30, "
                        f"{QUICK['repeats']} with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help=f"untimed calls per side first (default: 5, {QUICK['warmup']} with "
                        f"--quick)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="threads for both NumPy's BLAS and torch (default: %(default)s; more "
                        "only contend on a busy machine)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON (default: no)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else {"repeats": 30, "warmup": 5}
    for name, low in (("repeats", 1), ("warmup", 0), ("threads", 1)):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
        if getattr(args, name) < low:
            p.error(f"--{name}: expected an integer >= {low}, got {getattr(args, name)}")
    if args.json:
        try:
            usable_file(args.json, "--json")
        except ValueError as exc:
            p.error(str(exc))
    limiter = set_threads(args.threads)  # noqa: F841 - keeps the BLAS limit in force
    print(f"# {machine()}, median of {args.repeats}{' (--quick)' if args.quick else ''}")
    print(f"# {threads_line()}")
    cases, left_out = collect(args.only or list(GROUPS), args.quick)
    print(f"{'case':<44} {'dtype':<8} {'scratch ms':>11} {'torch ms':>9} {'ratio':>6}")
    rows = []
    for i, case in enumerate(cases, 1):
        progress(f"bench [{i}/{len(cases)}] {case.group}: {case.name} ({case.dtype}), "
                 f"{args.warmup} warm-up + {args.repeats} timed calls per side ...")
        s, t = time_pair(case, args.repeats, args.warmup)
        rows.append({"group": case.group, "case": case.name, "dtype": case.dtype,
                     "scratch_ms": s * 1e3, "torch_ms": t * 1e3, "ratio": s / t})
        print(f"{case.name:<44} {case.dtype:<8} {s * 1e3:>11.3f} {t * 1e3:>9.3f} "
              f"{s / t:>6.2f}", flush=True)
    for case in left_out:
        print(f"# left out by --quick: {case.group}: {case.name} ({case.dtype})")
    if args.json:
        doc = {"machine": machine(), "threads": args.threads, "threads_line": threads_line(),
               "repeats": args.repeats, "warmup": args.warmup, "quick": args.quick,
               "rows": rows}
        write_text_atomic(args.json, json.dumps(doc, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
