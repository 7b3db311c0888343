"""Drive scratch and torch training side by side: the engine of ``scripts/train.py``.

With ``impl="both"`` the two sides start from the same weights (the torch model
is ``from_scratch`` of the scratch one), see the same minibatches
(``scratch.training.epoch_batches``) and after every step the run records
``|loss_scratch - loss_torch|`` and the largest parameter difference: how far
the two implementations drift apart.  ``impl="scratch"`` / ``"torch"`` run one
side (the torch side also under ``torchrun``: see ``torchref.training``).

Like ``torchref.convert``, this module imports both sides: it is where they meet.
Checkpoints: ``scratch.checkpoints`` (atomic files + a pointer with their SHA-256,
verified on ``--resume``, falling back to the previous set); each set holds
``meta.json`` (the position and records), scratch state as ``.npz``, torch state
as ``torch.save`` loaded ``weights_only``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from scratch import checkpoints as ck
from scratch import optim as soptim
from scratch import training as st
from scratch.data import load_dataset
from torchref import training as tt
from torchref.data import to_tensors
from torchref.device import set_threads

IMPLS = ("scratch", "torch", "both")
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}
# A resumed run must agree with the checkpoint on these settings.
RESUME_KEYS = ("model", "impl", "dataset", "batch_size", "lr", "optimizer", "seed", "dtype")
META_KEYS = ("config", "epoch", "step_in_epoch", "global_step", "loss_sums", "train_time",
             "history", "drift")


@dataclass
class RunConfig:
    model: str = "mlp"
    impl: str = "both"
    dataset: str = "digits"
    data_dir: str | None = None
    device: str = "auto"
    epochs: int = 5
    batch_size: int = 100
    lr: float = 0.1
    optimizer: str = "sgd"
    seed: int = 0
    dtype: str = "float32"
    out: str | None = None
    resume: bool = False
    checkpoint_every: int = 0
    stop_after: int = 0
    amp: bool = False
    compile: bool = False
    deterministic: bool = False
    threads: int = 0
    progress: bool = True


TORCH_ONLY = ("amp", "compile", "deterministic")   # torch-path options (--impl scratch: none)


def check_config(cfg: RunConfig, info: tt.DistInfo | None = None) -> None:
    """Reject bad settings with one ``ValueError`` per argument, naming it and the value.

    ``info`` (the process group, when known) adds the torchrun check.
    """
    if cfg.impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {cfg.impl!r}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {cfg.dtype!r}")
    if info is not None and info.world > 1 and cfg.impl != "torch":
        raise ValueError(f"impl: under torchrun (world size {info.world}) only 'torch' runs "
                         f"distributed, got {cfg.impl!r}")
    if cfg.amp and cfg.impl == "both":
        raise ValueError("amp: lockstep (--impl both) compares exact arithmetic; use --impl torch")
    if cfg.impl == "scratch":
        for flag in TORCH_ONLY:
            if getattr(cfg, flag):
                alternatives = "--impl torch" if flag == "amp" else "--impl torch (or both)"
                raise ValueError(f"{flag}: a torch option, but --impl scratch runs NumPy only; "
                                 f"use {alternatives}")
        if cfg.device not in ("auto", "cpu"):
            raise ValueError(f"device: --impl scratch runs NumPy on the CPU, got "
                             f"{cfg.device!r}; use --impl torch (or both) for {cfg.device!r}")
    if cfg.optimizer not in soptim.OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(soptim.OPTIMIZERS)}, "
                         f"got {cfg.optimizer!r}")
    for name in ("epochs", "batch_size"):
        value = getattr(cfg, name)
        if value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"lr: expected a positive finite number, got {cfg.lr}")
    for name in ("checkpoint_every", "stop_after", "threads"):
        value = getattr(cfg, name)
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {value}")
    if (cfg.resume or cfg.checkpoint_every or cfg.stop_after) and not cfg.out:
        raise ValueError("out: checkpoints (--resume, --checkpoint-every, --stop-after) need "
                         "an output folder")


def max_param_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]), initial=0.0)) for k in a)


class Run:
    """State of one training run; ``run()`` executes it to the end (or to ``stop_after``).

    ``Run`` writes ``out/checkpoints`` but does not lock ``out``: its caller holds the
    folder for the whole run (``scripts/train.py`` takes ``scratch.runlock.RunLock``).
    """

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        check_config(cfg)
        self.info = tt.setup_distributed(cfg.device) if cfg.impl != "scratch" \
            else tt.DistInfo()
        check_config(cfg, self.info)
        if cfg.deterministic:
            tt.set_deterministic(True)
        if cfg.threads:
            set_threads(cfg.threads)
        np_dtype, torch_dtype = DTYPES[cfg.dtype]
        (self.x, self.t), (self.xv, self.tv) = load_dataset(cfg.dataset, cfg.data_dir,
                                                            flatten=False, dtype=np_dtype)
        smodel = st.make_model(cfg.model, self.x.shape[1:], 10, seed=cfg.seed, dtype=np_dtype)
        self.trainers: dict = {}
        if cfg.impl in ("scratch", "both"):
            opt = soptim.OPTIMIZERS[cfg.optimizer](lr=cfg.lr)
            self.trainers["scratch"] = st.Trainer(smodel, opt)
        if cfg.impl in ("torch", "both"):
            tmodel = tt.model_from_scratch(smodel, device=self.info.device, dtype=torch_dtype)
            self.trainers["torch"] = tt.TorchTrainer(tmodel, cfg.optimizer, cfg.lr, self.info,
                                                     amp=cfg.amp, compile=cfg.compile)
            dev = self.info.device
            self.x_torch, self.t_torch = to_tensors(self.x, self.t, dev)
            self.xv_torch, self.tv_torch = to_tensors(self.xv, self.tv, dev)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.loss_sums = dict.fromkeys(self.trainers, 0.0)
        self.train_time = dict.fromkeys(self.trainers, 0.0)
        self.history: list[dict] = []
        self.drift: list[dict] = []
        self.ckpt_dir = Path(cfg.out).expanduser() / "checkpoints" if cfg.out else None
        self.resumed_from: str | None = None     # the checkpoint file set, after a resume
        self.run_id = ck.new_run_id()             # a resumed run carries its checkpoint's on
        self.warnings: list[str] = []             # damaged checkpoints skipped by restore()
        if cfg.resume:
            self.restore()
        elif self.ckpt_dir is not None:           # a pointer this run will replace: usable?
            try:
                ck.read_pointer(self.ckpt_dir)
            except ck.CheckpointError as exc:
                raise ck.CheckpointError(f"out: {exc}") from exc

    # -------------------------------------------------------------- checkpoints
    def meta(self) -> dict:
        return {"config": asdict(self.cfg), "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "loss_sums": self.loss_sums, "train_time": self.train_time,
                "history": self.history, "drift": self.drift, "world": self.info.world}

    def save(self) -> None:
        if "torch" in self.trainers:   # collective: every process joins the sum
            total = tt.all_reduce_sum(torch.tensor(self.loss_sums["torch"], dtype=torch.float64,
                                                   device=self.info.device), self.info)
            self.loss_sums["torch"] = float(total) if self.info.is_main else 0.0
        if not self.info.is_main or self.ckpt_dir is None:
            return
        meta = json.dumps(self.meta())
        writers = {"meta.json": lambda tmp: tmp.write_text(meta)}
        if "scratch" in self.trainers:
            arrays = self.trainers["scratch"].state_arrays()
            writers["scratch.npz"] = lambda tmp: st.write_npz(tmp, arrays)
        if "torch" in self.trainers:
            state = self.trainers["torch"].state_dict()
            writers["torch.pt"] = lambda tmp: torch.save(state, tmp)
        ck.save_checkpoint(self.ckpt_dir, f"step{self.global_step:08d}", writers, self.run_id)

    def read_meta(self, path: Path) -> dict:
        """A checkpoint's ``meta.json``, checked; ``ck.Incompatible`` if it is not this run's."""
        meta = json.loads(path.read_text())
        missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else META_KEYS
        if missing or not isinstance(meta["config"], dict) or \
                any(k not in meta["config"] for k in RESUME_KEYS):
            raise ValueError(f"missing {', '.join(missing) or 'settings'}")
        saved = meta["config"]
        diff = {k: (saved[k], getattr(self.cfg, k)) for k in RESUME_KEYS
                if saved[k] != getattr(self.cfg, k)}
        if diff:
            raise ck.Incompatible(f"resume: settings differ from the checkpoint in "
                                  f"{self.ckpt_dir} (saved, asked): {diff}")
        if meta["epoch"] >= self.cfg.epochs:
            raise ck.Incompatible(
                f"epochs: the checkpoint in {self.ckpt_dir} has already trained "
                f"{meta['epoch']} epoch(s) (step {meta['global_step']}), so --epochs "
                f"{self.cfg.epochs} leaves nothing to do; give --epochs above {meta['epoch']} "
                f"to train on")
        return meta

    def restore(self) -> None:
        """Load the newest usable checkpoint set (``ck.load_checkpoint``: verified, fallback)."""
        readers = {"meta.json": self.read_meta}
        if "scratch" in self.trainers:
            check = self.trainers["scratch"].check_state_arrays
            readers["scratch.npz"] = lambda path: check(st.load_npz(path))
        if "torch" in self.trainers:
            readers["torch.pt"] = self.trainers["torch"].read
        try:
            loaded = ck.load_checkpoint(self.ckpt_dir, readers)
        except ck.Incompatible:
            raise
        except ck.CheckpointError as exc:
            raise ck.CheckpointError(f"resume: {exc}") from exc
        meta = loaded.values["meta.json"]
        if "scratch" in self.trainers:
            self.trainers["scratch"].load_state_arrays(loaded.values["scratch.npz"])
        if "torch" in self.trainers:
            self.trainers["torch"].load_state_dict(loaded.values["torch.pt"])
        self.run_id, self.warnings = loaded.run, loaded.warnings
        for key in ("epoch", "step_in_epoch", "global_step", "history", "drift"):
            setattr(self, key, meta[key])
        self.loss_sums = dict(meta["loss_sums"])
        if not self.info.is_main:
            self.loss_sums = dict.fromkeys(self.loss_sums, 0.0)
        self.train_time = dict(meta["train_time"])
        self.resumed_from = (f"{self.ckpt_dir / loaded.stem}.* at epoch {self.epoch + 1}, "
                             f"{self.step_in_epoch} step(s) into it (global step "
                             f"{self.global_step})")

    # -------------------------------------------------------------- training
    def train_step(self, idx: np.ndarray) -> None:
        losses, cfg = {}, self.cfg
        if "scratch" in self.trainers:
            t0 = time.perf_counter()
            losses["scratch"] = self.trainers["scratch"].step(self.x[idx], self.t[idx])
            self.train_time["scratch"] += time.perf_counter() - t0
            self.loss_sums["scratch"] += losses["scratch"]
        if "torch" in self.trainers:
            t0 = time.perf_counter()
            mine = torch.as_tensor(np.array_split(idx, self.info.world)[self.info.rank],
                                   device=self.info.device)
            share = self.trainers["torch"].step(self.x_torch[mine], self.t_torch[mine],
                                                 len(idx))
            losses["torch"] = float(share)   # a sync: keeps the time honest on CUDA
            self.train_time["torch"] += time.perf_counter() - t0
            self.loss_sums["torch"] += losses["torch"]
        if cfg.impl == "both":
            self.drift.append({"step": self.global_step + 1,
                               "loss_diff": abs(losses["scratch"] - losses["torch"]),
                               "param_diff": max_param_diff(
                                   self.trainers["torch"].params_numpy(),
                                   self.trainers["scratch"].params_numpy())})

    def end_epoch(self, n_steps: int) -> None:
        for impl, trainer in self.trainers.items():
            total = self.loss_sums[impl]
            if impl == "torch":
                total = float(tt.all_reduce_sum(torch.tensor(total, dtype=torch.float64,
                                                             device=self.info.device),
                                                self.info))
            if impl == "scratch":
                tr, te = trainer.evaluate(self.x, self.t), trainer.evaluate(self.xv, self.tv)
            else:
                tr = trainer.evaluate(self.x_torch, self.t_torch)
                te = trainer.evaluate(self.xv_torch, self.tv_torch)
            self.history.append({"epoch": self.epoch + 1, "impl": impl,
                                 "train_loss": total / n_steps, "train_eval_loss": tr[0],
                                 "train_acc": tr[1], "test_loss": te[0], "test_acc": te[1],
                                 "train_time_s": self.train_time[impl]})
        self.loss_sums = dict.fromkeys(self.trainers, 0.0)
        self.epoch, self.step_in_epoch = self.epoch + 1, 0

    def run(self) -> dict:
        """Train to ``epochs``; returns ``{"history", "drift", "stopped"}``."""
        cfg = self.cfg
        # bars only on a terminal: in a log, the per-epoch lines say it without frames
        bar_cls = tt.progress_bar() if cfg.progress and self.info.is_main and \
            sys.stderr.isatty() else None
        while self.epoch < cfg.epochs:
            batches = st.epoch_batches(len(self.x), cfg.batch_size, cfg.seed, self.epoch)
            bar = bar_cls(total=len(batches), initial=self.step_in_epoch,
                          desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False) \
                if bar_cls else None
            for i, idx in st.iterate(batches, self.step_in_epoch):
                self.train_step(idx)
                self.global_step, self.step_in_epoch = self.global_step + 1, i + 1
                if bar:
                    bar.update(1)
                if cfg.stop_after and self.global_step >= cfg.stop_after:
                    self.save()
                    if bar:
                        bar.close()
                    return {"history": self.history, "drift": self.drift, "stopped": True}
                if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                    self.save()
            if bar:
                bar.close()
            self.end_epoch(len(batches))
            if self.info.is_main and cfg.progress:
                print(epoch_line(self.history, len(self.trainers)), flush=True)
            if self.ckpt_dir is not None:
                self.save()
        return {"history": self.history, "drift": self.drift, "stopped": False}


EPOCH_LINE_LEGEND = ("each epoch: loss and accuracy on the training and test sets, measured "
                     "after the epoch; seconds of training in that epoch")


def epoch_line(history: list[dict], n_impls: int) -> str:
    """The last epoch's records of ``history`` (one per implementation) as one line.

    Losses and accuracies are those measured after the epoch (``train_eval_loss``,
    not the running mean over its steps) and the time is that epoch's, not the total.
    """
    records, earlier = history[-n_impls:], history[:-n_impls]
    parts = []
    for r in records:
        before = next((p["train_time_s"] for p in reversed(earlier) if p["impl"] == r["impl"]),
                      0.0)
        parts.append(f"{r['impl']}: train loss {r['train_eval_loss']:.4f} acc "
                     f"{r['train_acc']:.4f}, test loss {r['test_loss']:.4f} acc "
                     f"{r['test_acc']:.4f}, {r['train_time_s'] - before:.1f}s")
    return f"epoch {records[0]['epoch']}  " + "  |  ".join(parts)


def summary_line(history: list[dict], n_impls: int) -> str:
    """One closing line: epochs, final test accuracy and total training time per side."""
    if not history:
        return "no epoch completed"
    records = history[-n_impls:]
    parts = [f"{r['impl']} test acc {r['test_acc']:.4f} (loss {r['test_loss']:.4f}), "
             f"{r['train_time_s']:.1f}s training in all" for r in records]
    return f"after epoch {records[0]['epoch']}: " + "; ".join(parts)


def drift_report(drift: list[dict]) -> dict:
    """Largest and final loss / parameter differences of a lockstep run."""
    if not drift:
        return {}
    return {"steps": len(drift),
            "max_loss_diff": max(d["loss_diff"] for d in drift),
            "max_param_diff": max(d["param_diff"] for d in drift),
            "final_loss_diff": drift[-1]["loss_diff"],
            "final_param_diff": drift[-1]["param_diff"]}
