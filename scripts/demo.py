"""The main job: does scratch agree with torch, and do both train the same?

1. The parity report: every component, forward and backward, scratch vs torch
   (``python -m torchref.report``).
2. Training: the MLP on the embedded digits data, once with scratch (NumPy
   backprop + ``scratch.optim.SGD``) and once with torch (autograd +
   ``torch.optim.SGD``), from the same initial weights and on the same
   batches; both loss curves side by side.

    python scripts/demo.py [--epochs 10] [--lr 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from scratch.data import load_digits
from torchref.tolerance import max_errors


def train_side_by_side(epochs: int, lr: float, batch_size: int, hidden: int,
                       seed: int) -> list[dict]:
    """Train scratch and torch MLPs in lockstep on digits; one row of metrics per epoch."""
    (x_train, t_train), (x_test, t_test) = load_digits()
    model = sm.MLP([x_train.shape[1], hidden, 10], seed=seed)
    tmodel = tm.MLP.from_scratch(model)
    opt, topt = so.SGD(lr), torch.optim.SGD(tmodel.parameters(), lr=lr)
    xt_test, tt_test = torch.from_numpy(x_test), torch.from_numpy(t_test)
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(1, epochs + 1):
        losses, tlosses = [], []
        for idx in np.array_split(rng.permutation(len(x_train)),
                                  max(1, len(x_train) // batch_size)):
            x, t = x_train[idx], t_train[idx]
            grads = model.gradient(x, t)          # also computes the loss
            losses.append(float(model.last_layer.loss))
            opt.update(model.params, grads)
            topt.zero_grad()
            loss = tmodel.loss(torch.from_numpy(x), torch.from_numpy(t))
            loss.backward()
            topt.step()
            tlosses.append(loss.item())
        drift = max(max_errors(tmodel.params[k], v)[0] for k, v in model.params.items())
        rows.append({"epoch": epoch, "scratch_loss": float(np.mean(losses)),
                     "torch_loss": float(np.mean(tlosses)),
                     "scratch_test_acc": model.accuracy(x_test, t_test),
                     "torch_test_acc": tmodel.accuracy(xt_test, tt_test),
                     "max_param_diff": drift})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=100, help="mini-batch size (default 100)")
    p.add_argument("--hidden", type=int, default=50, help="hidden units of the MLP (default 50)")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order (default 0)")
    p.add_argument("--skip-report", action="store_true", help="only the training part")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.hidden < 1 or not args.lr > 0:
        p.error("--epochs, --batch-size, --hidden must be >= 1 and --lr > 0")

    status = 0
    if not args.skip_report:
        from torchref.report import main as report_main
        status = report_main([])
        print()

    print(f"== MLP 64-{args.hidden}-10 on digits (1437 train / 360 test), float64, SGD "
          f"lr={args.lr}, batch {args.batch_size}, same initial weights and batches ==")
    print(f"{'epoch':>5} {'scratch loss':>13} {'torch loss':>13} {'scratch acc':>12} "
          f"{'torch acc':>10} {'max |param diff|':>17}")
    rows = train_side_by_side(args.epochs, args.lr, args.batch_size, args.hidden, args.seed)
    for r in rows:
        print(f"{r['epoch']:>5} {r['scratch_loss']:>13.6f} {r['torch_loss']:>13.6f} "
              f"{r['scratch_test_acc']:>12.4f} {r['torch_test_acc']:>10.4f} "
              f"{r['max_param_diff']:>17.2e}")
    last = rows[-1]
    print(f"last epoch: scratch loss {last['scratch_loss']:.10f}, "
          f"torch loss {last['torch_loss']:.10f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
