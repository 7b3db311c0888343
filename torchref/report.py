"""``python -m torchref.report``: the parity of every component, as a table a user can read.

For every component of ``torchref.components.COMPONENTS``, every device present
and every dtype the component takes, it runs ``torchref.parity.run_parity`` (the
very check the parity tests run, with the same tolerance policy) on N drawn
examples and prints one row per direction: component, direction, device,
dtype, examples tried, largest absolute and relative error, the tolerance,
and the verdict.  It also writes ``parity_report.json`` and a heat map
``parity_heatmap.png`` of error / tolerance (1 = at the tolerance) to --out.

``--module mypkg.components`` (repeatable) first imports a user's module that
registers its own components (``torchref.testing.register``); they are reported
beside the built-ins, or instead of them with ``--only``.  A failing row prints
the shrunk failing input and the first differing element (index, both values,
the allowed error).  Exit status 0 when nothing failed, 1 otherwise.
``main(argv)`` is the entry point for scripts (``scripts/demo.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from scratch._atomic import atomic_write, write_text_atomic
from scratch.runlock import usable_folder
from torchref.device import available_devices
from torchref.parity import Component, report_settings, run_parity
from torchref.testing._nonfinite import pinned_edges
from torchref.tolerance import POLICY, tf32_enabled, tolerance


@dataclass
class Row:
    """One line of the report: one component, direction, device and dtype."""

    component: str
    group: str
    direction: str
    device: str
    dtype: str
    examples: int
    max_abs: float
    max_rel: float
    max_ratio: float        # largest |error| / (atol + rtol |expected|); > 1 fails
    tolerance: str
    verdict: str            # PASS, FAIL or skip
    note: str = ""          # the skip reason or the first lines of the failure


def progress(components: Sequence[Component], enabled: bool) -> Sequence[Component]:
    """``components`` wrapped in a tqdm bar on stderr when ``enabled``, stderr is a terminal
    and tqdm is installed; else as they are."""
    if not enabled or not sys.stderr.isatty():
        return components
    from torchref.training import progress_bar
    tqdm = progress_bar()
    if tqdm is None:
        return components
    return tqdm(components, desc="parity", unit="component", file=sys.stderr, leave=False)


def run_report(components: Sequence[Component], devices: Sequence[torch.device],
               examples: int, show_progress: bool = False) -> list[Row]:
    """Run the parity check of every component on every device and dtype; one Row per direction.

    ``show_progress``: a progress bar over the components on stderr (terminals only).
    """
    rows = []
    with tf32_enabled(False):      # float32 is compared in the float32 mode (see the policy)
        for c in progress(components, show_progress):
            edged = replace(c, examples=pinned_edges(c))     # as parity_tests/test_components
            for device in devices:
                for dtype in c.dtypes:
                    stats = run_parity(edged, device, dtype, report_settings(examples))
                    tol = tolerance(dtype)
                    for direction, s in stats.directions.items():
                        note = s.skipped or (failure_summary(stats.failure, s.failure)
                                             if not s.passed else "")
                        rows.append(Row(c.name, c.group, direction, stats.device, stats.dtype,
                                        stats.examples, s.max_abs, s.max_rel, s.max_ratio,
                                        f"{tol.mode} rtol={tol.rtol:g} atol={tol.atol:g}",
                                        s.verdict, note))
    return rows


def failure_summary(shrunk: str, failure: str) -> str:
    """The lines of a failure a reader needs: the shrunk input, then for each failing quantity
    its label, the first differing element and any known-divergence note (hypothesis's own
    notes and torch's long message left out)."""
    keep = [line for line in shrunk.splitlines() if line.startswith("shrunk failing input")]
    lines = failure.splitlines()
    pinned = {line.split(" vs scratch: ")[0] for line in lines if ": first differing" in line}
    for line in lines:
        label = line.split(" vs scratch: ")[0] if " vs scratch: " in line else None
        if ((label and (": first differing" in line or label not in pinned))
                or line.startswith("note: ") or " side raised " in line
                or "modified its argument" in line):
            keep.append(line)
    return "\n".join(dict.fromkeys(keep)) or "\n".join(lines[:8])


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table, failures and skip reasons below it."""
    head = ("component", "direction", "device", "dtype", "examples", "max abs err",
            "max rel err", "tolerance", "verdict")
    body = [(r.component, r.direction, r.device, r.dtype, str(r.examples),
             "-" if r.verdict == "skip" else f"{r.max_abs:.2e}",
             "-" if r.verdict == "skip" else f"{r.max_rel:.2e}", r.tolerance, r.verdict)
            for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    skips = sorted({(r.component, r.direction, r.note) for r in rows if r.verdict == "skip"})
    if skips:
        lines += ["", "skipped:"] + [f"  {c} {d}: {why}" for c, d, why in skips]
    for r in rows:
        if r.verdict == "FAIL":
            lines += ["", f"FAIL {r.component} {r.direction} {r.device} {r.dtype}:",
                      *("  " + x for x in r.note.splitlines())]
    n_fail = sum(r.verdict == "FAIL" for r in rows)
    n_pass = sum(r.verdict == "PASS" for r in rows)
    lines += ["", f"{n_pass} passed, {n_fail} failed, {len(rows) - n_pass - n_fail} skipped "
                  f"(error ratio = |error| / (atol + rtol |expected|); a row passes when it is "
                  f"<= 1 everywhere)"]
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: Path, examples: int) -> None:
    doc = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "numpy": np.__version__, "examples_per_run": examples,
        "policy": {m: {"rtol": t.rtol, "atol": t.atol, "reason": t.reason}
                   for m, t in POLICY.items()},
        "rows": [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                  for k, v in asdict(r).items()} for r in rows],
    }
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


def write_heatmap(rows: Sequence[Row], path: Path) -> bool:
    """Heat map of log10(error / tolerance): components down, direction/device/dtype across."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("heat map skipped: matplotlib is not installed (pip install matplotlib, or the "
              "project's dev extra)", file=sys.stderr)
        return False
    comps = list(dict.fromkeys(r.component for r in rows))
    cols = list(dict.fromkeys((r.direction, r.device, r.dtype) for r in rows))
    grid = np.full((len(comps), len(cols)), np.nan)
    for r in rows:
        if r.verdict != "skip":
            value = r.max_ratio if np.isfinite(r.max_ratio) else 1e6
            grid[comps.index(r.component), cols.index((r.direction, r.device, r.dtype))] = \
                np.log10(max(value, 1e-12))
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 3, 0.42 * len(comps) + 2))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="lightgrey")
    norm = matplotlib.colors.TwoSlopeNorm(vmin=-8, vcenter=0, vmax=2)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{d}\n{dev} {dt}" for d, dev, dt in cols], fontsize=8)
    ax.set_yticks(range(len(comps)), comps, fontsize=8)
    for (i, j), v in np.ndenumerate(grid):
        label = "skip" if np.isnan(v) else ("exact" if v <= -12 else f"{v:.1f}")
        ax.text(j, i, label, ha="center", va="center", fontsize=7, color="black")
    fig.colorbar(im, ax=ax, label="log10(max error / tolerance); > 0 fails, exact = no error")
    ax.set_title("scratch vs torch: largest error relative to the tolerance policy")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return True


def import_modules(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """Import each user module (it registers its components); a clear error when one fails."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:    # any error while importing the user's module
            parser.error(f"--module {name}: could not import it ({type(exc).__name__}: {exc}); "
                         f"it must be importable from here (installed, or run from the folder "
                         f"that holds it)")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 = every check passed)."""
    from torchref.components import COMPONENTS
    parser = argparse.ArgumentParser(
        prog="python -m torchref.report",
        description="Parity of every scratch component with torch, forward and backward, on "
                    "every device and dtype present; writes a table, JSON and a heat map.")
    parser.add_argument("--out", type=Path, default=Path("parity_report"),
                        help="directory for parity_report.json and parity_heatmap.png "
                             "(default: %(default)s)")
    parser.add_argument("--examples", type=int, default=25,
                        help="hypothesis examples per component, device and dtype "
                             "(default: %(default)s)")
    parser.add_argument("--module", action="append", default=[], metavar="MODULE",
                        help="import this module first (repeatable): it registers its own "
                             "components with torchref.testing.register, e.g. mypkg.components")
    parser.add_argument("--only", nargs="+", action="extend", metavar="NAME",
                        help=f"only these components (default: all), some of "
                             f"{', '.join(COMPONENTS)} or of the --module components")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar (it is shown only on a terminal anyway)")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error(f"--examples: expected a positive integer, got {args.examples}")
    import_modules(parser, args.module)
    unknown = sorted(set(args.only or ()) - set(COMPONENTS))
    if unknown:
        parser.error(f"--only: unknown components {unknown}; expected names from "
                     f"{list(COMPONENTS)}")
    try:
        usable_folder(args.out, "--out")
    except ValueError as exc:
        parser.error(str(exc))
    components = [c for n, c in COMPONENTS.items() if not args.only or n in args.only]
    rows = run_report(components, available_devices(), args.examples, args.progress)
    print(format_table(rows))
    write_json(rows, args.out / "parity_report.json", args.examples)
    written = [args.out / "parity_report.json"]
    if write_heatmap(rows, args.out / "parity_heatmap.png"):
        written.append(args.out / "parity_heatmap.png")
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
