"""Compare the course's optimizers on one task: the same network, weights and batches.

Every optimizer of ``scratch.optim.OPTIMIZERS`` (or of ``torchref.optim`` with
``--side torch``) trains an MLP from the *same* initial weights on the *same*
sequence of mini-batches, with its course default hyper-parameters unless
``--lr`` is given; the training loss of every step is recorded.  Writes

    OUT/optimizers.json   the configuration, every loss curve, the final test accuracy
    OUT/optimizers.png    the loss curves (raw, faint, and smoothed), as the course plots them

Run from the repository root:

    python scripts/compare_optimizers.py                       # digits, 500 steps
    python scripts/compare_optimizers.py --steps 2000 --out runs/opt --side torch
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

import scratch.models as sm
import scratch.optim as so
from scratch._atomic import atomic_write, write_json_atomic
from scratch.data import load_digits
from scratch.runlock import usable_folder
from scratch.training import epoch_batches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizers", nargs="+", default=list(so.OPTIMIZERS),
                   choices=list(so.OPTIMIZERS), metavar="NAME",
                   help=f"optimizers to compare, some of {', '.join(so.OPTIMIZERS)} "
                        f"(default: all)")
    p.add_argument("--steps", type=int, default=500,
                   help="training steps per optimizer (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="samples per step; above the training set size (1438 digits) a "
                        "step uses the whole set (default: %(default)s)")
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 100, 100, 100],
                   help="hidden layer widths (default: 100 100 100 100, the course's four "
                        "layers of 100)")
    p.add_argument("--lr", type=float, default=None,
                   help="one learning rate for all (default: each optimizer's course default)")
    p.add_argument("--side", choices=["scratch", "torch"], default="scratch",
                   help="train with scratch.optim or with torchref.optim (torch.optim) "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="weights and batch order (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/compare_optimizers"),
                   help="output folder for optimizers.json and optimizers.png "
                        "(default: %(default)s)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is shown only on a terminal anyway)")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, "
                    f"got {getattr(args, name)}")
    if min(args.hidden) < 1:
        p.error(f"--hidden: expected positive widths, got {args.hidden}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr: expected a positive finite number, got {args.lr}")
    try:                             # last: a bad argument above creates no folder
        usable_folder(args.out, "--out")
    except ValueError as exc:
        p.error(str(exc))
    return args


def step_batches(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """The index arrays of ``steps`` steps, shared by every optimizer.

    Epoch after epoch of ``scratch.training.epoch_batches`` (the order
    ``scripts/train.py`` uses too); each epoch's last batch may be shorter, and a
    ``batch_size`` above ``n`` gives one batch of the whole set per epoch.
    """
    batches: list[np.ndarray] = []
    epoch = 0
    while len(batches) < steps:
        batches += epoch_batches(n, batch_size, seed, epoch)
        epoch += 1
    return batches[:steps]


def run_scratch(name: str, kwargs: dict, sizes: list[int], data: tuple,
                batches: list[np.ndarray], seed: int, bar=None) -> tuple[list[float], float]:
    (x, t), (x_test, t_test) = data
    model = sm.MLP(sizes, seed=seed)
    opt = so.OPTIMIZERS[name](**kwargs)
    losses = []
    for idx in batches:
        grads = model.gradient(x[idx], t[idx])
        losses.append(float(model.last_layer.loss))
        opt.update(model.params, grads)
        if bar is not None:
            bar.update(1)
    return losses, model.accuracy(x_test, t_test)


def run_torch(name: str, kwargs: dict, sizes: list[int], data: tuple,
              batches: list[np.ndarray], seed: int, bar=None) -> tuple[list[float], float]:
    import torch

    import torchref.models as tm
    import torchref.optim as to
    (x, t), (x_test, t_test) = data
    model = tm.MLP.from_scratch(sm.MLP(sizes, seed=seed))    # the same initial weights
    opt = to.OPTIMIZERS[name](**kwargs).torch_optimizer(model.parameters())
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = []
    for idx in map(torch.from_numpy, batches):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(xt[idx], tt[idx], train_flg=True)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
        if bar is not None:
            bar.update(1)
    return losses, model.accuracy(torch.from_numpy(x_test), torch.from_numpy(t_test))


def smooth(values: list[float], window: int = 11) -> np.ndarray:
    """Running median over ``window`` steps (the course's smooth_curve plays the same role)."""
    v = np.asarray(values)
    half = window // 2
    padded = np.pad(v, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (name, run) in enumerate(result["optimizers"].items()):
        color = f"C{i}"
        ax.plot(run["loss"], color=color, alpha=0.2, linewidth=0.8)
        ax.plot(smooth(run["loss"]), color=color, label=f"{name} (test acc "
                f"{run['test_accuracy']:.3f})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mini-batch)")
    ax.set_yscale("log")
    ax.set_title(f"{result['side']} optimizers, MLP {result['sizes']}, digits, "
                 f"batch {result['batch_size']}")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def progress(total: int, enabled: bool):
    """A tqdm bar over every step of every optimizer (stderr, terminals only), or None."""
    from torchref.training import progress_bar
    tqdm = progress_bar() if enabled else None
    return None if tqdm is None else tqdm(total=total, unit="step", disable=None, leave=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_digits()
    (x, _), _ = data
    sizes = [x.shape[1], *args.hidden, 10]
    if args.batch_size > len(x):
        print(f"note: --batch-size {args.batch_size} is above the {len(x)} training samples: "
              f"every step uses the whole training set")
    batches = step_batches(len(x), args.batch_size, args.steps, args.seed)
    run = run_scratch if args.side == "scratch" else run_torch
    result: dict = {"side": args.side, "sizes": sizes, "steps": args.steps,
                    "batch_size": min(args.batch_size, len(x)), "seed": args.seed,
                    "data": "digits", "optimizers": {}}
    bar = progress(len(args.optimizers) * args.steps, args.progress)
    for name in args.optimizers:
        kwargs = {} if args.lr is None else {"lr": args.lr}
        if bar is not None:
            bar.set_description(name)
        start = time.perf_counter()
        losses, acc = run(name, kwargs, sizes, data, batches, args.seed, bar)
        opt = so.OPTIMIZERS[name](**kwargs)
        result["optimizers"][name] = {
            "hyperparameters": {k: v for k, v in vars(opt).items()
                                if isinstance(v, float) and not isinstance(v, bool)},
            "loss": losses, "test_accuracy": acc}
        line = (f"{name:>9}: final loss {np.mean(losses[-20:]):.4f} (mean of last 20 steps), "
                f"test accuracy {acc:.3f}, {time.perf_counter() - start:.1f} s")
        if bar is None:
            print(line, flush=True)
        else:
            bar.write(line)
    if bar is not None:
        bar.close()
    write_json_atomic(args.out / "optimizers.json", result)
    plot(result, args.out / "optimizers.png")
    print(f"wrote {args.out / 'optimizers.json'} and {args.out / 'optimizers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
