"""The main job: does scratch agree with torch, and do both train the same?

1. The parity report: every component, forward and backward, scratch vs torch
   (``python -m torchref.report``).
2. Training: the MLP on the embedded digits data, once with scratch (NumPy
   backprop + ``scratch.optim.SGD``) and once with torch (autograd +
   ``torch.optim.SGD``), from the same initial weights and on the same
   batches (``torchref.lockstep``, the engine of ``scripts/train.py``); both
   loss curves side by side and how far the two drifted apart.

    python scripts/demo.py [--epochs 10] [--lr 0.1] [--seed 0] [--threads 1]

Both sides compute with ``--threads`` threads (torch's and NumPy's BLAS, default
1: more only contend on a busy machine); the output says how many.
"""

from __future__ import annotations

import argparse
import math
import sys

from torchref.device import DEFAULT_THREADS, set_threads, threads_line
from torchref.lockstep import Run, RunConfig, drift_report


def train_side_by_side(epochs: int, lr: float, batch_size: int, seed: int,
                       threads: int = DEFAULT_THREADS) -> dict:
    """Train the scratch and torch MLPs in lockstep on digits (``torchref.lockstep``)."""
    cfg = RunConfig(model="mlp", impl="both", dataset="digits", device="cpu", epochs=epochs,
                    batch_size=batch_size, lr=lr, seed=seed, dtype="float64", progress=False,
                    threads=threads)
    return Run(cfg).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=100, help="mini-batch size (default 100)")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order (default 0)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="threads for torch and NumPy's BLAS (default %(default)s)")
    p.add_argument("--skip-report", action="store_true", help="only the training part")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, "
                    f"got {getattr(args, name)}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error(f"--lr: expected a positive finite number, got {args.lr}")
    if args.threads < 1:
        p.error(f"--threads: expected a positive integer, got {args.threads}")
    limiter = set_threads(args.threads)  # noqa: F841 - keeps the BLAS limit in force
    print(threads_line(), flush=True)

    status = 0
    if not args.skip_report:
        from torchref.report import main as report_main
        status = report_main([])
        print()

    print(f"== MLP 64-100-10 on digits, float64, SGD lr={args.lr}, batch {args.batch_size}: "
          f"scratch and torch from the same initial weights on the same batches ==")
    result = train_side_by_side(args.epochs, args.lr, args.batch_size, args.seed, args.threads)
    by_epoch: dict[int, dict] = {}
    for r in result["history"]:
        by_epoch.setdefault(r["epoch"], {})[r["impl"]] = r
    print(f"{'epoch':>5} {'scratch loss':>13} {'torch loss':>13} {'scratch val acc':>17} "
          f"{'torch val acc':>15}")
    for epoch, r in sorted(by_epoch.items()):
        print(f"{epoch:>5} {r['scratch']['train_loss']:>13.6f} {r['torch']['train_loss']:>13.6f} "
              f"{r['scratch']['val_acc']:>17.4f} {r['torch']['val_acc']:>15.4f}")
    test = result["test"]
    print(f"test accuracy of the best-by-validation weights (epoch "
          f"{test['scratch']['epoch']}): scratch {test['scratch']['test_acc']:.4f}, "
          f"torch {test['torch']['test_acc']:.4f}")
    last, drift = by_epoch[max(by_epoch)], drift_report(result["drift"])
    print(f"last epoch mean loss: scratch {last['scratch']['train_loss']:.12f}, "
          f"torch {last['torch']['train_loss']:.12f}")
    print(f"drift over {drift['steps']} steps: largest |loss difference| "
          f"{drift['max_loss_diff']:.2e}, largest |parameter difference| "
          f"{drift['max_param_diff']:.2e}")
    return status


if __name__ == "__main__":
    sys.exit(main())
