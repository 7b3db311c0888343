"""Benchmarks: scratch (NumPy) vs torch on the CPU, measured side by side in one run.

Each case times the scratch side and the torch side alternately (one call of
each per repeat, after warm-up), with the same number of threads for NumPy's
BLAS (threadpoolctl) and for torch, and prints the medians and the ratio
scratch / torch (below 1.0: scratch is faster).  Results go to stdout and,
with ``--json``, to a file.  Add a group by writing a function that returns
``Case`` objects and listing it in ``GROUPS``.

    python scripts/bench.py                   # every group
    python scripts/bench.py --only mlp --repeats 50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Case:
    """One comparison: two zero-argument callables doing the same work."""

    group: str
    name: str
    dtype: str
    scratch: Callable[[], object]
    torch: Callable[[], object]


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


def mlp_cases(batch: int = 100) -> list[Case]:
    """One training step (forward, backward, SGD update) of the 784-100-10 MLP."""
    import scratch.models as sm
    import scratch.optim as so
    import torchref.models as tm

    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        x = rng.random((batch, 784)).astype(dtype)
        t = rng.integers(0, 10, batch)
        model = sm.MLP([784, 100, 10], seed=0, dtype=dtype)
        tmodel = tm.MLP.from_scratch(model)
        opt, topt = so.SGD(0.01), torch.optim.SGD(tmodel.parameters(), lr=0.01)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def scratch_step(model=model, opt=opt, x=x, t=t) -> None:
            opt.update(model.params, model.gradient(x, t))

        def torch_step(tmodel=tmodel, topt=topt, xt=xt, tt=tt) -> None:
            topt.zero_grad(set_to_none=True)
            tmodel.loss(xt, tt).backward()
            topt.step()

        cases.append(Case("mlp", f"train step 784-100-10, batch {batch}", np.dtype(dtype).name,
                          scratch_step, torch_step))
    return cases


GROUPS: dict[str, Callable[[], list[Case]]] = {"mlp": mlp_cases}


def set_threads(n: int) -> object:
    """Limit NumPy's BLAS and torch to n threads; returns the threadpoolctl limiter."""
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threadpoolctl not installed; NumPy's BLAS threads not limited",
              file=sys.stderr)
        return None
    return threadpool_limits(limits=n)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, numpy {np.__version__}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--only", nargs="*", choices=sorted(GROUPS), default=None,
                   help="groups to run (default: all)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per side (median)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per side first")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for both NumPy's BLAS and torch (default: all cores)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be at least 1")
    limiter = set_threads(args.threads)  # noqa: F841 - keeps the limit in force
    print(f"# {machine()}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'case':<44} {'dtype':<8} {'scratch ms':>11} {'torch ms':>9} {'ratio':>6}")
    rows = []
    for group in args.only or list(GROUPS):
        for case in GROUPS[group]():
            s, t = time_pair(case, args.repeats, args.warmup)
            rows.append({"group": case.group, "case": case.name, "dtype": case.dtype,
                         "scratch_ms": s * 1e3, "torch_ms": t * 1e3, "ratio": s / t})
            print(f"{case.name:<44} {case.dtype:<8} {s * 1e3:>11.3f} {t * 1e3:>9.3f} "
                  f"{s / t:>6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "threads": args.threads, "repeats": args.repeats,
                       "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
