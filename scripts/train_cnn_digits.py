"""Train SimpleConvNet on the 8x8 digits: scratch and the torch mirror, side by side.

Both start from the same weights (``from_scratch``) and see the same batches in
the same order (plain SGD, the same learning rate); each epoch prints both
sides' mean training loss and test accuracy, and the seconds each side spent
training.  Run from the repository root:

    PYTHONPATH=. python scripts/train_cnn_digits.py                 # defaults below
    PYTHONPATH=. python scripts/train_cnn_digits.py --epochs 60 --seed 0 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from scratch.data import load_digits


def train_side_by_side(epochs: int, lr: float, batch_size: int, filter_num: int,
                       filter_size: int, hidden: int, seed: int,
                       dtype: type = np.float64) -> Iterator[dict]:
    """Scratch and torch SimpleConvNets trained in lockstep; yields one row per epoch."""
    (x_train, t_train), (x_test, t_test) = load_digits(flatten=False, dtype=dtype)
    conv = {"filter_num": filter_num, "filter_size": filter_size, "pad": filter_size // 2,
            "stride": 1}
    model = sm.SimpleConvNet((1, 8, 8), conv, hidden_size=hidden, weight_init_std="he",
                             seed=seed, dtype=dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model)
    opt, topt = so.SGD(lr), torch.optim.SGD(tmodel.parameters(), lr=lr)
    xt_train, tt_train = torch.from_numpy(x_train), torch.from_numpy(t_train)
    xt_test, tt_test = torch.from_numpy(x_test), torch.from_numpy(t_test)
    rng = np.random.default_rng(seed)
    secs, tsecs = 0.0, 0.0
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(x_train))
        losses, tlosses = [], []
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            t0 = time.perf_counter()
            grads = model.gradient(x_train[idx], t_train[idx])
            opt.update(model.params, grads)
            t1 = time.perf_counter()
            topt.zero_grad(set_to_none=True)
            tloss = tmodel.loss(xt_train[idx], tt_train[idx])
            tloss.backward()
            topt.step()
            t2 = time.perf_counter()
            secs, tsecs = secs + (t1 - t0), tsecs + (t2 - t1)
            losses.append(float(model.last_layer.loss))
            tlosses.append(float(tloss))
        diff = max(float(np.max(np.abs(v - tmodel.params[k].detach().numpy())))
                   for k, v in model.params.items())
        yield {"epoch": epoch, "scratch_loss": float(np.mean(losses)),
                     "torch_loss": float(np.mean(tlosses)),
                     "scratch_test_acc": model.accuracy(x_test, t_test),
                     "torch_test_acc": tmodel.accuracy(xt_test, tt_test),
                     "scratch_s": secs, "torch_s": tsecs, "max_param_diff": diff}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=50, help="mini-batch size (default 50)")
    p.add_argument("--filter-num", type=int, default=30, help="conv filters (default 30)")
    p.add_argument("--filter-size", type=int, default=5,
                   help="square conv kernel, padded by size // 2 (default 5)")
    p.add_argument("--hidden", type=int, default=100, help="hidden width (default 100)")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for NumPy's BLAS and torch (default 1)")
    args = p.parse_args(argv)
    if min(args.epochs, args.batch_size, args.filter_num, args.filter_size, args.hidden,
           args.threads) < 1 or not args.lr > 0:
        p.error("--epochs, --batch-size, --filter-num, --filter-size, --hidden and --threads "
                "must be >= 1 and --lr > 0")
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=args.threads)  # noqa: F841 - keeps the limit
    except ImportError:
        print("note: threadpoolctl not installed; NumPy's BLAS threads not limited",
              file=sys.stderr)
    print(f"== SimpleConvNet on digits (1x8x8): {args.filter_num} {args.filter_size}x"
          f"{args.filter_size} filters, hidden {args.hidden}, SGD lr={args.lr}, batch "
          f"{args.batch_size}, {args.dtype}, {args.threads} thread(s), seed {args.seed} ==")
    print(f"{'epoch':>5} {'scratch loss':>13} {'torch loss':>11} {'scratch acc':>12} "
          f"{'torch acc':>10} {'scratch s':>10} {'torch s':>8} {'max |param diff|':>17}")
    rows = []
    for r in train_side_by_side(args.epochs, args.lr, args.batch_size, args.filter_num,
                                args.filter_size, args.hidden, args.seed,
                                np.dtype(args.dtype).type):
        rows.append(r)
        print(f"{r['epoch']:>5} {r['scratch_loss']:>13.6f} {r['torch_loss']:>11.6f} "
              f"{r['scratch_test_acc']:>12.4f} {r['torch_test_acc']:>10.4f} "
              f"{r['scratch_s']:>10.2f} {r['torch_s']:>8.2f} {r['max_param_diff']:>17.3e}",
              flush=True)
    first = next((r["epoch"] for r in rows if r["scratch_test_acc"] >= 0.98), None)
    last = rows[-1]
    print(f"first epoch with scratch test accuracy >= 98%: {first}; last epoch: scratch "
          f"{last['scratch_test_acc']:.4f}, torch {last['torch_test_acc']:.4f}, training "
          f"seconds scratch {last['scratch_s']:.1f}, torch {last['torch_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
