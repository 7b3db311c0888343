"""Knowledge distillation: a teacher, a student trained alone, the same student distilled.

For every seed: train a large MLP *teacher* on the labels; train a small MLP
*student* on the labels alone; train the *same* student (same initial weights,
same minibatch order) on ``scratch.distillation.distillation_loss`` against the
teacher's logits.  Print and save the test errors of the three (JSON, and a
PNG plot), with the mean and spread over the seeds and the paired difference
distilled - alone, whatever it shows.

    PYTHONPATH=$PWD python scripts/distill.py                  # scratch (NumPy), digits, 5 seeds
    PYTHONPATH=$PWD python scripts/distill.py --impl torch --device auto --seeds 0 1 2
    PYTHONPATH=$PWD python scripts/distill.py --dataset mnist --data-dir ~/data --train-size 0

``--impl scratch`` trains with the hand-written backward passes and
``scratch.optim.SGD``; ``--impl torch`` with autograd and ``torch.optim.SGD``
on ``--device``.  Both start from the same weights (the scratch initialisation,
moved across by ``torchref.convert``) and see the same minibatches, so they give
the same errors up to rounding.  The teacher's logits on the training set are
computed once after it is trained (it has no dropout or batch norm, so they
are exactly what it would output batch by batch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import scratch.data
import scratch.models
import scratch.optim
from scratch.distillation import DistillationLoss

DTYPES = {"float32": np.float32, "float64": np.float64}
Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_dataset(name: str, dtype: type, train_size: int | None, seed: int,
                 data_dir: str | None = None) -> Data:
    """(x_train, t_train), (x_test, t_test) with flattened images and integer labels.

    ``train_size`` keeps a class-stratified subset of the training set (the
    same subset for every seed: it is fixed by ``seed``, the split seed).
    """
    if name == "digits":
        (x, t), test = scratch.data.load_digits(dtype=dtype)
    else:
        if data_dir is None:
            raise SystemExit("--dataset mnist needs --data-dir (MNIST/raw/ or the four IDX files)")
        try:
            (x, t), test = scratch.data.load_mnist(data_dir, flatten=True, dtype=dtype)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"--dataset mnist: {exc}") from exc
    if train_size is not None and train_size < len(t):
        keep, _ = scratch.data.stratified_split(t, 1 - train_size / len(t), seed)
        x, t = x[keep], t[keep]
    return (x, t), test


def scratch_trainer(sizes: list[int], seed: int, dtype: type, lr: float,
                    loss_layer: object | None) -> tuple[object, Callable, Callable]:
    """A scratch MLP, its one-minibatch training step and its logits function."""
    model = scratch.models.MLP(sizes, seed=seed, dtype=dtype)
    opt = scratch.optim.SGD(lr)

    def step(xb: np.ndarray, tb: np.ndarray, teacher_b: np.ndarray | None) -> float:
        logits = model.predict(xb)
        if loss_layer is None:
            loss = model.last_layer.forward(logits, tb)
            dout = model.last_layer.backward(1.0)
        else:
            loss = loss_layer.forward(logits, teacher_b, tb)
            dout = loss_layer.backward(1.0)
        for layer in reversed(model.layers):          # backprop through Affine/Relu
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(model.layers[::2], start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        opt.update(model.params, grads)
        return float(loss)

    return model, step, model.predict


def torch_trainer(sizes: list[int], seed: int, dtype: type, lr: float,
                  loss_layer: object | None, device: object) -> tuple[object, Callable,
                                                                      Callable]:
    """The same network on torch (scratch's initial weights), autograd and torch.optim.SGD."""
    import torch

    import torchref.layers
    import torchref.models

    init = scratch.models.MLP(sizes, seed=seed, dtype=dtype)
    model = torchref.models.MLP.from_scratch(init, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if loss_layer is not None:
        loss_layer = torchref.layers.DistillationLoss(loss_layer.temperature, loss_layer.alpha)

    def to_dev(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    def step(xb: np.ndarray, tb: np.ndarray, teacher_b: np.ndarray | None) -> float:
        opt.zero_grad(set_to_none=True)
        logits = model(to_dev(xb))
        if loss_layer is None:
            loss = model.last_layer(logits, to_dev(tb))
        else:
            loss = loss_layer(logits, to_dev(teacher_b), to_dev(tb))
        loss.backward()
        opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        return model(to_dev(x)).cpu().numpy()

    return model, step, predict


def train(args: argparse.Namespace, sizes: list[int], data: Data, seed: int, epochs: int,
          teacher_logits: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Train one network; return its logits function.  The minibatch order depends on seed only."""
    (x, t), _ = data
    dtype = DTYPES[args.dtype]
    loss_layer = None if teacher_logits is None else DistillationLoss(args.temperature,
                                                                      args.alpha)
    if args.impl == "scratch":
        _, step, predict = scratch_trainer(sizes, seed, dtype, args.lr, loss_layer)
    else:
        _, step, predict = torch_trainer(sizes, seed, dtype, args.lr, loss_layer, args.device)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(t))
        for start in range(0, len(t), args.batch_size):
            idx = order[start:start + args.batch_size]
            step(x[idx], t[idx], None if teacher_logits is None else teacher_logits[idx])
    return predict


def test_error(predict: Callable[[np.ndarray], np.ndarray], data: Data) -> float:
    _, (x, t) = data
    return float(np.mean(predict(x).argmax(axis=-1) != t))


def run_seed(args: argparse.Namespace, data: Data, seed: int) -> dict[str, float]:
    (x, _), _ = data
    d, c = x.shape[1], 10
    teacher = train(args, [d, *args.teacher_hidden, c], data, seed, args.teacher_epochs)
    student_sizes = [d, *args.student_hidden, c]
    alone = train(args, student_sizes, data, seed, args.epochs)
    distilled = train(args, student_sizes, data, seed, args.epochs, teacher_logits=teacher(x))
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


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--impl", choices=["scratch", "torch"], default="scratch",
                   help="NumPy with hand-derived backward, or torch with autograd")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="torch device (torchref.device.resolve_device); --impl torch only")
    p.add_argument("--dataset", choices=["digits", "mnist"], default="digits",
                   help="digits is embedded; mnist is read from --data-dir")
    p.add_argument("--data-dir", default=None,
                   help="folder with MNIST/raw/ (torchvision's layout) or the four IDX files")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="one run (teacher, student alone, student distilled) per seed")
    p.add_argument("--train-size", type=int, default=300,
                   help="labelled training examples (class-stratified subset; 0 = all)")
    p.add_argument("--teacher-hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--student-hidden", type=int, nargs="+", default=[8])
    p.add_argument("--teacher-epochs", type=int, default=100)
    p.add_argument("--epochs", type=int, default=400, help="student epochs (both students)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the soft term")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS / torch (0 = the libraries' default); these "
                        "networks are tiny, so one thread is fastest on a shared machine")
    p.add_argument("--out", type=Path, default=Path("runs/distill"),
                   help="folder for results.json and errors.png")
    args = p.parse_args(argv)
    if args.impl == "torch":
        from torchref.device import resolve_device
        try:
            args.device = resolve_device(args.device)
        except ValueError as exc:
            p.error(str(exc))
    return args


def limit_threads(n: int, impl: str) -> None:
    """Use ``n`` CPU threads (0: leave the libraries' defaults)."""
    if n <= 0:
        return
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:   # optional (the dev extra): BLAS keeps its default
        print("threadpoolctl not installed: --threads does not limit NumPy's BLAS "
              "(pip install threadpoolctl)")
    if impl == "torch":
        import torch
        torch.set_num_threads(n)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    limit_threads(args.threads, args.impl)
    DistillationLoss(args.temperature, args.alpha)   # validate before any training
    data = load_dataset(args.dataset, DTYPES[args.dtype], args.train_size or None, seed=0,
                        data_dir=args.data_dir)
    (x, _), (xt, _) = data
    where = f"{args.impl}" + (f" on {args.device}" if args.impl == "torch" else "")
    print(f"{args.dataset}: {len(x)} train / {len(xt)} test; teacher {args.teacher_hidden}, "
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
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "results.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2) + "\n"))
    title = (f"{args.dataset}, {len(x)} labels, {len(args.seeds)} seeds, {where}: "
             f"T={args.temperature}, alpha={args.alpha}")
    plot(args.out / "errors.png", rows, summary, title)
    print(f"saved {args.out / 'results.json'} and {args.out / 'errors.png'}")
    return result


if __name__ == "__main__":
    main()
