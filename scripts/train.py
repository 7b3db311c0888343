"""Train a model with the NumPy code (scratch), with torch, or with both in lockstep.

Examples
--------
  python scripts/train.py                                   # MLP on digits, both sides, lockstep
  python scripts/train.py --model cnn --impl torch --device cuda --amp
  python scripts/train.py --dataset mnist --data-dir ~/data --epochs 10 --out runs/mnist
  python scripts/train.py --out runs/a --epochs 20 --resume # continue runs/a to epoch 20
  python scripts/train.py --model deepcnn --optimizer adam --lr 0.001 --scheduler cosine \
      --early-stop-patience 5 --out runs/deep    # best.npz/best.pt by validation accuracy
  python scripts/train.py --model deepcnn --image-size 16 --augment 2 --impl torch
                                             # upsampled digits, shifted training batches
  torchrun --nproc-per-node 2 scripts/train.py --impl torch # DistributedDataParallel

--val-fraction of the training data (drawn by the seed) is held out for
validation; each epoch ends with the validation loss and accuracy, the best
model (by validation accuracy), early stopping and the scheduler's step.  The
test set is evaluated once, at the end, on the best-by-validation weights.

Writes to --out: metrics.json (config, per-epoch records, best epoch, test
result, lockstep drift), metrics.csv (one row per epoch and implementation:
epoch, impl, lr, train_loss, train_eval_loss, train_acc, val_loss, val_acc,
train_time_s), curves.png (loss and accuracy of each implementation on the
same axes, measured after each epoch; the loss panel also shows the mean
minibatch loss during the epoch, dotted) and checkpoints/ (with the best
weights, best.npz / best.pt).  Per epoch, ``train_loss`` is that running mean
over the epoch's steps, ``train_eval_loss`` the loss on the training set after it.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from scratch._atomic import atomic_write, write_text_atomic
from scratch.data import DATASETS
from scratch.optim import OPTIMIZERS as SCRATCH_OPTIMIZERS
from scratch.runlock import RunLock, clean_stale_tmp
from scratch.training import HIDDEN, MODELS, TIE_BREAKS
from torchref.device import DEFAULT_THREADS, DEVICE_CHOICES, threads_line
from torchref.lockstep import Run
from torchref.optim import OPTIMIZERS as TORCH_OPTIMIZERS
from torchref.run_config import DTYPES, IMPLS, SCHEDULERS, RunConfig, check_config
from torchref.run_report import COLUMNS, EPOCH_LINE_LEGEND, drift_report, summary_line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    optimizers = sorted(set(SCRATCH_OPTIMIZERS) & set(TORCH_OPTIMIZERS))
    d = RunConfig()
    p.add_argument("--model", choices=MODELS, default=d.model,
                   help="mlp: input-hidden-10 relu; cnn: the reference text's CNN (conv 32, "
                        "conv 64, pool, fc); simplecnn: the course's SimpleConvNet; deepcnn: "
                        "the course's DeepConvNet; lstm/gru/rnn: images read row by row; "
                        "transformer: the rows as tokens "
                        "(default: %(default)s)")
    p.add_argument("--impl", choices=IMPLS, default=d.impl,
                   help="scratch (NumPy), torch, or both in lockstep: same initial weights "
                        "and batches, per-step loss and parameter drift (default: %(default)s)")
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset,
                   help="digits is embedded (scikit-learn); mnist/fashion-mnist read "
                        "--data-dir (default: %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help="folder with MNIST/raw/ (torchvision's layout) or the four IDX files")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=d.device,
                   help="torch device; auto = cuda when present (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="global minibatch size, split across torchrun processes "
                        "(default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    p.add_argument("--optimizer", choices=optimizers, default=d.optimizer,
                   help="same name on both sides (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="initial weights and data order (default: %(default)s)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=d.dtype,
                   help="parameter and data dtype (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (metrics, plot, checkpoints)")
    g = p.add_argument_group("model options (refused where the model has none)")
    g.add_argument("--hidden", type=int, nargs="+", default=None, metavar="WIDTH",
                   help="hidden width (the mlp takes several: --hidden 256 256); default per "
                        "model: " + ", ".join(f"{k} {v}" for k, v in HIDDEN.items()))
    g.add_argument("--dropout", type=float, default=d.dropout, metavar="RATIO",
                   help="dropout ratio (mlp, simplecnn, deepcnn; the cnn's are the text's "
                        "0.25/0.5: give 0.5); not with --impl both (default: %(default)s)")
    g.add_argument("--batchnorm", action="store_true",
                   help="batch normalisation after the hidden affine (mlp, simplecnn)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, metavar="LAMBDA",
                   help="L2 on the weights W, the course's 0.5*LAMBDA*|W|^2 (torch: "
                        "weight_decay on the W group) (default: %(default)s)")
    g = p.add_argument_group("validation, schedule, best model, early stopping")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, metavar="F",
                   help="fraction of the training data held out for validation, drawn by "
                        "the seed; 0: none (then no best model, early stopping or plateau) "
                        "(default: %(default)s)")
    g.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler,
                   help="learning-rate schedule, stepped after each epoch; plateau watches "
                        "the validation loss; not with momentum/nesterov under --impl both "
                        "(default: %(default)s)")
    g.add_argument("--step-size", type=int, default=d.step_size,
                   help="step: epochs between reductions (default: %(default)s)")
    g.add_argument("--gamma", type=float, default=d.gamma,
                   help="step: the factor (default: %(default)s)")
    g.add_argument("--t-max", type=int, default=d.t_max,
                   help="cosine: half period in epochs; 0: --epochs (default: %(default)s)")
    g.add_argument("--eta-min", type=float, default=d.eta_min,
                   help="cosine: the lowest lr (default: %(default)s)")
    g.add_argument("--plateau-factor", type=float, default=d.plateau_factor,
                   help="plateau: the factor (default: %(default)s)")
    g.add_argument("--plateau-patience", type=int, default=d.plateau_patience,
                   help="plateau: bad epochs tolerated (default: %(default)s)")
    g.add_argument("--plateau-cooldown", type=int, default=d.plateau_cooldown,
                   help="plateau: epochs ignored after a reduction (default: %(default)s)")
    g.add_argument("--min-lr", type=float, default=d.min_lr,
                   help="plateau: the lowest lr (default: %(default)s)")
    g.add_argument("--tie-break", choices=TIE_BREAKS, default=d.tie_break,
                   help="between epochs of equal best validation accuracy, keep the one with "
                        "the lower validation loss (val-loss) or the earlier one (first) "
                        "(default: %(default)s)")
    g.add_argument("--early-stop-patience", type=int, default=d.early_stop_patience,
                   metavar="EPOCHS",
                   help="stop after EPOCHS epochs without a better validation accuracy; "
                        "0: never (default: %(default)s)")
    g = p.add_argument_group("data preparation (scratch.augment; both sides get the same arrays)")
    g.add_argument("--image-size", type=int, default=d.image_size, metavar="PIXELS",
                   help="resize every image to PIXELS x PIXELS once, at load (bilinear, "
                        "torch's align_corners=False): e.g. 28 for the 8x8 digits "
                        "(default: as stored)")
    g.add_argument("--augment", type=int, default=d.augment, metavar="PIXELS",
                   help="shift each training image by up to PIXELS pixels in x and y, drawn "
                        "per epoch from (seed, epoch), zeros entering; validation and test "
                        "images are not shifted; 0: none (default: %(default)s)")
    g.add_argument("--augment-rotate", type=float, default=d.augment_rotate, metavar="DEGREES",
                   help="also turn each training image by an angle drawn from -DEGREES..DEGREES "
                        "per epoch, about its centre (bilinear; before the shift) "
                        "(default: %(default)s)")
    g.add_argument("--augment-scale", type=float, default=d.augment_scale, metavar="F",
                   help="also scale each training image by a factor drawn from 1-F..1+F per "
                        "epoch (with the rotation) (default: %(default)s)")
    g = p.add_argument_group("checkpoints")
    g.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in OUT/checkpoints")
    g.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every STEPS steps; 0: only at each epoch's end "
                        "(default: %(default)s)")
    g.add_argument("--stop-after", type=int, default=0, metavar="STEPS",
                   help="checkpoint and stop after STEPS steps in all (to test --resume); "
                        "0: train to the end (default: %(default)s)")
    g = p.add_argument_group("torch path")
    g.add_argument("--amp", action="store_true",
                   help="autocast: float16 + GradScaler on CUDA, bfloat16 on the CPU")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms(True), no cuDNN autotuning")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="CPU threads for torch and NumPy's BLAS (0: the libraries' defaults); "
                        "more only contend on a busy machine (default: %(default)s)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars or per-epoch lines (the closing summary is kept)")
    return p


def write_outputs(out: Path, cfg: RunConfig, result: dict) -> None:
    """metrics.json, metrics.csv and curves.png, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    report = {"config": asdict(cfg), "history": result["history"], "best": result["best"],
              "early_stopped": result["early_stopped"], "test": result["test"],
              "drift_report": drift_report(result["drift"]), "drift": result["drift"]}
    write_text_atomic(out / "metrics.json", json.dumps(report, indent=1))
    if result["history"]:
        def write_csv(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(COLUMNS))
                w.writeheader()
                w.writerows(result["history"])
        atomic_write(out / "metrics.csv", write_csv)
    plot(out / "curves.png", result["history"], result["drift"])


def plot(path: Path, history: list[dict], drift: list[dict]) -> None:
    """Loss and accuracy per epoch (train and validation, after each epoch), and the drift.

    The running mean of the minibatch losses during the epoch (``train_loss``) is
    drawn thin and dotted: it lags the after-epoch value the test loss compares with.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
        return
    ncols = 3 if drift else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4))
    styles = {"scratch": {"linewidth": 4, "alpha": 0.5}, "torch": {"linewidth": 1.5}}
    for impl in dict.fromkeys(r["impl"] for r in history):
        rows = [r for r in history if r["impl"] == impl]
        ep = [r["epoch"] for r in rows]
        style = styles.get(impl, {})
        for ax, key in ((axes[0], "loss"), (axes[1], "acc")):
            train = "train_eval_loss" if key == "loss" else "train_acc"
            ax.plot(ep, [r[train] for r in rows], marker="o", label=f"{impl} train", **style)
            ax.plot(ep, [np.nan if r[f"val_{key}"] is None else r[f"val_{key}"] for r in rows],
                    marker="s", linestyle="--", label=f"{impl} validation", **style)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].plot(ep, [r["train_loss"] for r in rows], linestyle=":", linewidth=1,
                     color="grey" if impl == "scratch" else "black",
                     label=f"{impl} train, mean during the epoch")
    axes[0].set(title="loss (after each epoch)", xlabel="epoch")
    axes[1].set(title="accuracy (after each epoch)", xlabel="epoch")
    if drift:
        steps = [d["step"] for d in drift]
        floor = 1e-18   # exact agreement (0) is drawn at the floor
        axes[2].semilogy(steps, [max(d["loss_diff"], floor) for d in drift], label="|Δ loss|")
        axes[2].semilogy(steps, [max(d["param_diff"], floor) for d in drift],
                         label="max |Δ param|")
        axes[2].set(title=f"scratch vs torch drift (0 drawn at {floor:g})", xlabel="step")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:   # stopped before an epoch ended: no curves
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def as_flag(message: str) -> str:
    """``"batch_size: ..."`` -> ``"--batch-size: ..."``: name the flag the user typed."""
    name, sep, rest = message.partition(": ")
    if sep and name in RunConfig.__dataclass_fields__:
        return f"--{name.replace('_', '-')}: {rest}"
    return message


def open_out(cfg: RunConfig) -> RunLock | None:
    """Lock ``--out`` for this run (the main process's), before any training.

    Raises ``ValueError`` when the folder is unusable (a file, not writable) or
    held by another run; removes temporary files of a killed run; says when it
    took over the lock of a dead one.
    """
    if not cfg.out or int(os.environ.get("RANK", "0")) != 0:
        return None
    lock = RunLock(Path(cfg.out).expanduser(), arg="out")
    taken_over = lock.acquire()
    checkpoints = lock.folder / "checkpoints"
    try:
        checkpoints.mkdir(exist_ok=True)
        if not os.access(checkpoints, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        lock.release()
        raise ValueError(f"out: cannot write checkpoints in {checkpoints} "
                         f"({exc.strerror or exc})") from None
    if taken_over:
        print(f"warning: {taken_over}", file=sys.stderr, flush=True)
    for stale in [*clean_stale_tmp(lock.folder), *clean_stale_tmp(checkpoints)]:
        print(f"removed {stale}, left by a run that was killed mid-write", file=sys.stderr)
    return lock


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    cfg = RunConfig(**vars(parser.parse_args(argv)))
    lock = None
    try:               # the lock on --out is held from before the first step to the last output
        try:
            check_config(cfg)
            lock = open_out(cfg)
            run = Run(cfg)
        except (ValueError, FileNotFoundError) as exc:   # a bad setting: usage + message, exit 2
            if cfg.impl != "scratch":
                from torchref.training import cleanup_distributed
                cleanup_distributed(synchronize=False)
            parser.error(as_flag(str(exc)))
        return train(cfg, run)
    finally:
        if lock is not None:
            lock.release()


def train(cfg: RunConfig, run: Run) -> dict:
    """Train ``run`` to its end, then write the outputs and the closing lines."""
    main_process = run.info.is_main
    for warning in run.warnings if main_process else []:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if main_process and run.resumed_from:
        print(f"resumed from {run.resumed_from}", flush=True)
    if main_process and cfg.progress:
        print(threads_line(tuple(run.trainers)), flush=True)
    if main_process and cfg.compile:
        print("torch.compile: the first step compiles the model, which takes a while (minutes "
              "on a busy CPU) with no other output", flush=True)
    if main_process and cfg.progress:
        print(EPOCH_LINE_LEGEND, flush=True)
    from torchref.training import cleanup_distributed
    try:
        result = run.run()
    except BaseException:
        if cfg.impl != "scratch":
            cleanup_distributed(synchronize=False)
        raise
    if cfg.impl != "scratch":
        cleanup_distributed()
    if main_process:
        if cfg.out:
            write_outputs(Path(cfg.out).expanduser(), cfg, result)
        if result["stopped"]:
            print(f"stopped after step {run.global_step}; continue with --resume "
                  f"(same --out {cfg.out})")
        else:
            print(f"{summary_line(result['history'], len(run.trainers), result['test'])}; "
                  f"{threads_line(tuple(run.trainers))}")
        if result["drift"]:
            r = drift_report(result["drift"])
            print(f"lockstep drift over {r['steps']} steps: max |Δ loss| "
                  f"{r['max_loss_diff']:.3g}, max |Δ param| {r['max_param_diff']:.3g} "
                  f"(final {r['final_param_diff']:.3g})")
        if cfg.out:
            print(f"wrote {Path(cfg.out).expanduser()}/metrics.json, metrics.csv, curves.png")
    return result


if __name__ == "__main__":
    main()
