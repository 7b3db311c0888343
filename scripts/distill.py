"""Knowledge distillation: a teacher, a student trained alone, the same student distilled.

For every seed: train a large *teacher* (an MLP, or a CNN: ``--teacher cnn`` the
reference text's CNN, ``deepcnn`` the course's DeepConvNet without its dropout,
``simplecnn`` the course's SimpleConvNet) on the labels; train a small MLP *student* on the
labels alone; train the *same* student (same initial weights, same minibatch
order) on ``scratch.distillation.distillation_loss`` against the teacher's
logits.  Print and save the test errors of the three (JSON, and a PNG plot),
with the mean and spread over the seeds and the paired difference
distilled - alone, whatever it shows.

    python scripts/distill.py                  # scratch (NumPy), digits, 5 seeds
    python scripts/distill.py --impl torch --device auto --seeds 0 1 2
    python scripts/distill.py --teacher cnn --teacher-epochs 30
    python scripts/distill.py --teacher deepcnn --alpha none   # the text's unweighted recipe
    python scripts/distill.py --dataset mnist --data-dir ~/data --train-size 0

The networks come from ``scratch.training.make_model`` and the minibatches from
``scratch.training.epoch_batches`` (the factory and the data order of
``scripts/train.py``); ``--impl scratch`` trains with ``scratch.training.Trainer``
(the hand-written backward passes, ``scratch.optim``), ``--impl torch`` with
autograd and ``torchref.training.make_optimizer`` (``torch.optim``) on
``--device``.  Both start from the same weights (the scratch initialisation,
moved across by ``torchref.convert``) and see the same minibatches, so they give
the same errors up to rounding.  The distilled student's loss is its model's
last layer (``TeacherLoss``), as softmax-with-loss is the course's.  The
teacher's logits on the training set are computed once after it is trained (it
has no dropout or batch norm, so they are exactly what it would output batch by
batch).  ``--alpha none`` trains on the reference text's recipe ``T^2 KL + CE``
(``DistillationLoss(T)``'s default); a number, the weighted ``alpha T^2 KL + (1 - alpha) CE``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import scratch.data
import scratch.optim
from scratch._atomic import atomic_write
from scratch.distillation import DistillationLoss
from scratch.runlock import usable_folder
from scratch.training import Trainer, epoch_batches, make_model

DTYPES = {"float32": np.float32, "float64": np.float64}
TEACHER_HIDDEN = {"mlp": [256, 256], "cnn": [128], "simplecnn": [100], "deepcnn": [50]}
Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_dataset(name: str, dtype: type, train_size: int | None, seed: int,
                 data_dir: str | None = None) -> Data:
    """(x_train, t_train), (x_test, t_test): images (N, 1, H, W) and integer labels.

    ``train_size`` keeps a class-stratified subset of the training set (the
    same subset for every seed: it is fixed by ``seed``, the split seed).
    """
    try:
        (x, t), test = scratch.data.load_dataset(name, data_dir, flatten=False, dtype=dtype)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"--dataset {name}: {exc}") from exc
    if train_size is not None and train_size < len(t):
        keep, _ = scratch.data.stratified_split(t, 1 - train_size / len(t), seed)
        x, t = x[keep], t[keep]
    return (x, t), test


class TeacherLoss:
    """The distillation loss as a scratch model's last layer: ``forward(logits, labels)``
    against ``teacher`` (the teacher's logits of the current minibatch, set before each step),
    so ``model.gradient`` and ``Trainer.step`` train on it unchanged."""

    def __init__(self, temperature: float, alpha: float | None) -> None:
        self.layer = DistillationLoss(temperature, alpha)
        self.teacher: np.ndarray | None = None
        self.loss: np.ndarray | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        self.loss = self.layer.forward(logits, self.teacher, labels)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        return self.layer.backward(dout)


def scratch_trainer(model: object, args: argparse.Namespace,
                    loss: TeacherLoss | None) -> tuple[Callable, Callable]:
    """The scratch model's one-minibatch step (``Trainer.step``) and its logits function."""
    if loss is not None:
        model.last_layer = loss
    trainer = Trainer(model, scratch.optim.OPTIMIZERS[args.optimizer](lr=args.lr))
    return trainer.step, model.predict


def torch_trainer(model: object, args: argparse.Namespace,
                  loss: TeacherLoss | None) -> tuple[Callable, Callable]:
    """The same network on torch (the scratch model's initial weights), autograd and the
    ``torch.optim`` optimizer of the same name."""
    import torch

    import torchref.layers
    from torchref.training import make_optimizer, model_from_scratch

    net = model_from_scratch(model, device=args.device)
    opt = make_optimizer(args.optimizer, net.parameters(), args.lr)

    def to_dev(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(args.device)

    criterion = net.last_layer                              # softmax with loss
    if loss is not None:
        distill = torchref.layers.DistillationLoss(loss.layer.temperature, loss.layer.alpha)

        def criterion(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return distill(logits, to_dev(loss.teacher), labels)

    def step(xb: np.ndarray, tb: np.ndarray) -> float:
        opt.zero_grad(set_to_none=True)
        value = criterion(net(to_dev(xb)), to_dev(tb))
        value.backward()
        opt.step()
        return float(value.detach())

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        return net(to_dev(x)).cpu().numpy()

    return step, predict


def train(args: argparse.Namespace, kind: str, hidden: list[int], data: Data, seed: int,
          epochs: int, teacher_logits: np.ndarray | None = None
          ) -> Callable[[np.ndarray], np.ndarray]:
    """Train one network (``make_model(kind, ..., hidden)``); return its logits function.

    The initial weights and the minibatch order depend on ``seed`` only.
    """
    (x, t), _ = data
    model = make_model(kind, x.shape[1:], 10, seed=seed, dtype=DTYPES[args.dtype],
                       hidden=hidden)
    loss = None if teacher_logits is None else TeacherLoss(args.temperature, args.alpha)
    make = scratch_trainer if args.impl == "scratch" else torch_trainer
    step, predict = make(model, args, loss)
    for epoch in range(epochs):
        for idx in epoch_batches(len(t), args.batch_size, seed, epoch):
            if loss is not None:
                loss.teacher = teacher_logits[idx]
            step(x[idx], t[idx])
    return predict


def test_error(predict: Callable[[np.ndarray], np.ndarray], data: Data) -> float:
    _, (x, t) = data
    return float(np.mean(predict(x).argmax(axis=-1) != t))


def run_seed(args: argparse.Namespace, data: Data, seed: int) -> dict[str, float]:
    (x, _), _ = data
    teacher = train(args, args.teacher, args.teacher_hidden, data, seed, args.teacher_epochs)
    alone = train(args, "mlp", args.student_hidden, data, seed, args.epochs)
    distilled = train(args, "mlp", args.student_hidden, data, seed, args.epochs,
                      teacher_logits=teacher(x))
    return {"teacher": test_error(teacher, data), "student_alone": test_error(alone, data),
            "student_distilled": test_error(distilled, data)}


def summarize(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample std (ddof=1; 0 for one seed), min and max of every column."""
    out = {}
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    cols["distilled_minus_alone"] = cols["student_distilled"] - cols["student_alone"]
    for k, v in cols.items():
        out[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                  "min": float(v.min()), "max": float(v.max())}
    return out


def table(seeds: list[int], rows: list[dict[str, float]], summary: dict) -> str:
    lines = [f"{'seed':>6} {'teacher':>9} {'student':>9} {'distilled':>10} {'dist-alone':>11}"]
    for seed, r in zip(seeds, rows, strict=True):
        diff = r["student_distilled"] - r["student_alone"]
        lines.append(f"{seed:>6} {r['teacher']:>9.2%} {r['student_alone']:>9.2%} "
                     f"{r['student_distilled']:>10.2%} {diff:>+11.2%}")
    m = {k: summary[k]["mean"] for k in summary}
    s = {k: summary[k]["std"] for k in summary}
    lines.append(f"{'mean':>6} {m['teacher']:>9.2%} {m['student_alone']:>9.2%} "
                 f"{m['student_distilled']:>10.2%} {m['distilled_minus_alone']:>+11.2%}")
    lines.append(f"{'std':>6} {s['teacher']:>9.2%} {s['student_alone']:>9.2%} "
                 f"{s['student_distilled']:>10.2%} {s['distilled_minus_alone']:>11.2%}")
    wins = sum(r["student_distilled"] < r["student_alone"] for r in rows)
    ties = sum(r["student_distilled"] == r["student_alone"] for r in rows)
    lines.append(f"distilled better than alone on {wins} of {len(rows)} seeds ({ties} ties)")
    return "\n".join(lines)


def plot(path: Path, rows: list[dict[str, float]], summary: dict, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["teacher", "student_alone", "student_distilled"]
    fig, ax = plt.subplots(figsize=(6, 4))
    means = [100 * summary[k]["mean"] for k in keys]
    stds = [100 * summary[k]["std"] for k in keys]
    ax.bar(range(3), means, yerr=stds, capsize=6, color=["#777", "#c44", "#48c"], alpha=0.6)
    for r in rows:   # one grey line per seed: the paired comparison
        ax.plot(range(3), [100 * r[k] for k in keys], "o-", color="k", alpha=0.35, ms=3, lw=0.8)
    ax.set_xticks(range(3), ["teacher", "student alone", "student distilled"])
    ax.set_ylabel("test error (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def parse_alpha(text: str) -> float | None:
    """``--alpha``: a number, or ``none`` for the reference text's unweighted recipe."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'none', "
                                         f"got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--impl", choices=["scratch", "torch"], default="scratch",
                   help="NumPy with hand-derived backward, or torch with autograd")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="torch device (torchref.device.resolve_device); --impl torch only")
    p.add_argument("--dataset", choices=scratch.data.DATASETS, default="digits",
                   help="digits is embedded; mnist and fashion-mnist are read from --data-dir")
    p.add_argument("--data-dir", default=None,
                   help="folder with MNIST/raw/ (torchvision's layout) or the four IDX files")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="one run (teacher, student alone, student distilled) per seed")
    p.add_argument("--train-size", type=int, default=300,
                   help="labelled training examples (class-stratified subset, rounded per class: "
                        "300 gives 299 on digits; 0 = all)")
    p.add_argument("--teacher", choices=sorted(TEACHER_HIDDEN), default="mlp",
                   help="the teacher network (scratch.training.make_model); the student is "
                        "an MLP")
    p.add_argument("--teacher-hidden", type=int, nargs="+", default=None,
                   help="teacher hidden widths (default: 256 256 for the mlp; one width for "
                        "the CNNs: 128 cnn, 50 deepcnn, 100 simplecnn)")
    p.add_argument("--student-hidden", type=int, nargs="+", default=[8],
                   help="hidden widths of the student MLP")
    p.add_argument("--teacher-epochs", type=int, default=100, help="teacher epochs")
    p.add_argument("--epochs", type=int, default=400, help="student epochs (both students)")
    p.add_argument("--optimizer", choices=sorted(scratch.optim.OPTIMIZERS), default="sgd",
                   help="the same optimizer on both sides (scratch.optim / torch.optim)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (all three networks)")
    p.add_argument("--batch-size", type=int, default=32, help="minibatch size")
    p.add_argument("--temperature", type=float, default=2.0,
                   help="softmax temperature T of the soft term")
    p.add_argument("--alpha", type=parse_alpha, default=0.9,
                   help="weight of the soft term (alpha T^2 KL + (1 - alpha) CE), or 'none': "
                        "the reference text's unweighted T^2 KL + CE")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64",
                   help="parameter and data dtype")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS / torch (0 = the libraries' default); these "
                        "networks are tiny, so one thread is fastest on a shared machine")
    p.add_argument("--out", type=Path, default=Path("runs/distill"),
                   help="folder for results.json and errors.png")
    args = p.parse_args(argv)
    positive = {"--epochs": args.epochs, "--teacher-epochs": args.teacher_epochs,
                "--batch-size": args.batch_size}
    for flag, value in positive.items():
        if value < 1:
            p.error(f"{flag}: expected a positive integer, got {value}")
    for flag, widths in (("--student-hidden", args.student_hidden),
                         ("--teacher-hidden", args.teacher_hidden or [1])):
        if min(widths) < 1:
            p.error(f"{flag}: expected positive widths, got {widths}")
    if args.train_size < 0:
        p.error(f"--train-size: expected 0 (all) or a positive integer, got {args.train_size}")
    if args.threads < 0:
        p.error(f"--threads: expected 0 (the libraries' default) or a positive integer, "
                f"got {args.threads}")
    for flag, value in (("--lr", args.lr), ("--temperature", args.temperature)):
        if not (math.isfinite(value) and value > 0):
            p.error(f"{flag}: expected a positive finite number, got {value}")
    if args.alpha is not None and not 0 <= args.alpha <= 1:
        p.error(f"--alpha: expected a number in [0, 1], got {args.alpha}")
    if args.teacher_hidden is None:
        args.teacher_hidden = TEACHER_HIDDEN[args.teacher]
    if args.teacher != "mlp" and len(args.teacher_hidden) != 1:
        p.error(f"--teacher-hidden: the {args.teacher} teacher has one hidden layer, got "
                f"{args.teacher_hidden}")
    if args.impl == "torch":
        from torchref.device import resolve_device
        try:
            args.device = resolve_device(args.device)
        except ValueError as exc:
            p.error(str(exc))
    try:                             # last: a bad argument above creates no folder
        usable_folder(args.out, "--out")
    except ValueError as exc:
        p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads > 0:
        from torchref.device import set_threads
        set_threads(args.threads)
    DistillationLoss(args.temperature, args.alpha)   # validate before any training
    data = load_dataset(args.dataset, DTYPES[args.dtype], args.train_size or None, seed=0,
                        data_dir=args.data_dir)
    (x, _), (xt, _) = data
    where = f"{args.impl}" + (f" on {args.device}" if args.impl == "torch" else "")
    print(f"{args.dataset}: {len(x)} train / {len(xt)} test; teacher {args.teacher} "
          f"{args.teacher_hidden}, "
          f"student {args.student_hidden}; T={args.temperature}, alpha={args.alpha}; {where}")
    rows, times = [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        rows.append(run_seed(args, data, seed))
        times.append(time.perf_counter() - t0)
        r = rows[-1]
        print(f"seed {seed}: teacher {r['teacher']:.2%}, student alone "
              f"{r['student_alone']:.2%}, distilled {r['student_distilled']:.2%} "
              f"({times[-1]:.1f} s)", flush=True)
    summary = summarize(rows)
    print(table(args.seeds, rows, summary))
    config = {k: v if isinstance(v, (int, float, str, list)) else str(v)
              for k, v in vars(args).items()}
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "config": config, "n_train": len(x), "n_test": len(xt),
        "seeds": args.seeds, "per_seed": rows, "seconds_per_seed": times, "summary": summary,
    }
    atomic_write(args.out / "results.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2) + "\n"))
    title = (f"{args.dataset}, {len(x)} labels, {len(args.seeds)} seeds, {where}: "
             f"T={args.temperature}, alpha={args.alpha}")
    plot(args.out / "errors.png", rows, summary, title)
    print(f"saved {args.out / 'results.json'} and {args.out / 'errors.png'}")
    return result


if __name__ == "__main__":
    main()
