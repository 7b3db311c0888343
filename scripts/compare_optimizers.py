"""Compare the course's optimizers on one task: the same network, weights and batches.

Every optimizer of ``scratch.optim.OPTIMIZERS`` (or of ``torchref.optim`` with
``--side torch``) trains an MLP from the *same* initial weights on the *same*
sequence of mini-batches, with its course default hyper-parameters unless
``--lr`` is given; the training loss of every step is recorded.  Writes

    OUT/optimizers.json   the configuration, every loss curve, the final test accuracy
    OUT/optimizers.png    the loss curves (raw, faint, and smoothed), as the course plots them

Run from the repository root:

    PYTHONPATH=. python scripts/compare_optimizers.py                       # digits, 500 steps
    PYTHONPATH=. python scripts/compare_optimizers.py --steps 2000 --out runs/opt --side torch
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import scratch.models as sm
import scratch.optim as so
from scratch._atomic import atomic_write, write_json_atomic
from scratch.data import load_digits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--optimizers", nargs="+", default=list(so.OPTIMIZERS),
                   choices=list(so.OPTIMIZERS), help="optimizers to compare")
    p.add_argument("--steps", type=int, default=500, help="training steps per optimizer")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 100, 100, 100],
                   help="hidden layer widths (the course uses four layers of 100)")
    p.add_argument("--lr", type=float, default=None,
                   help="one learning rate for all (default: each optimizer's course default)")
    p.add_argument("--side", choices=["scratch", "torch"], default="scratch",
                   help="train with scratch.optim or with torchref.optim (torch.optim)")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order")
    p.add_argument("--out", type=Path, default=Path("runs/compare_optimizers"),
                   help="output folder for optimizers.json and optimizers.png")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or min(args.hidden) < 1:
        p.error("--steps, --batch-size and --hidden must be positive")
    if args.lr is not None and not args.lr > 0:
        p.error(f"--lr: expected a positive number, got {args.lr}")
    return args


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch_size) indices: shuffled epochs, shared by every optimizer."""
    rng = np.random.default_rng(seed)
    per_epoch = max(1, n // batch_size)
    epochs = -(-steps // per_epoch)
    rows = [rng.permutation(n)[:per_epoch * batch_size].reshape(per_epoch, batch_size)
            for _ in range(epochs)]
    return np.concatenate(rows)[:steps]


def run_scratch(name: str, kwargs: dict, sizes: list[int], data: tuple, batches: np.ndarray,
                seed: int) -> tuple[list[float], float]:
    (x, t), (x_test, t_test) = data
    model = sm.MLP(sizes, seed=seed)
    opt = so.OPTIMIZERS[name](**kwargs)
    losses = []
    for idx in batches:
        grads = model.gradient(x[idx], t[idx])
        losses.append(float(model.last_layer.loss))
        opt.update(model.params, grads)
    return losses, model.accuracy(x_test, t_test)


def run_torch(name: str, kwargs: dict, sizes: list[int], data: tuple, batches: np.ndarray,
              seed: int) -> tuple[list[float], float]:
    import torch

    import torchref.models as tm
    import torchref.optim as to
    (x, t), (x_test, t_test) = data
    model = tm.MLP.from_scratch(sm.MLP(sizes, seed=seed))    # the same initial weights
    opt = to.OPTIMIZERS[name](**kwargs).torch_optimizer(model.parameters())
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = []
    for idx in torch.from_numpy(batches):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(xt[idx], tt[idx], train_flg=True)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_digits()
    (x, _), _ = data
    sizes = [x.shape[1], *args.hidden, 10]
    batches = batch_indices(len(x), args.batch_size, args.steps, args.seed)
    run = run_scratch if args.side == "scratch" else run_torch
    result: dict = {"side": args.side, "sizes": sizes, "steps": args.steps,
                    "batch_size": args.batch_size, "seed": args.seed, "data": "digits",
                    "optimizers": {}}
    for name in args.optimizers:
        kwargs = {} if args.lr is None else {"lr": args.lr}
        start = time.perf_counter()
        losses, acc = run(name, kwargs, sizes, data, batches, args.seed)
        opt = so.OPTIMIZERS[name](**kwargs)
        result["optimizers"][name] = {
            "hyperparameters": {k: v for k, v in vars(opt).items()
                                if isinstance(v, float) and not isinstance(v, bool)},
            "loss": losses, "test_accuracy": acc}
        print(f"{name:>9}: final loss {np.mean(losses[-20:]):.4f} (mean of last 20 steps), "
              f"test accuracy {acc:.3f}, {time.perf_counter() - start:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "optimizers.json", result)
    plot(result, args.out / "optimizers.png")
    print(f"wrote {args.out / 'optimizers.json'} and {args.out / 'optimizers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
