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
``meta.json`` (the position, records, best epoch, patience counter and the scratch
scheduler), scratch state as ``.npz``, torch state (with its scheduler) as
``torch.save`` loaded ``weights_only``, and the best-by-validation weights
``best.npz`` / ``best.pt`` (written when the best improves, carried by later sets).

Each epoch ends with an evaluation on the validation split (``--val-fraction`` of
the training data, drawn by the seed), then the best model, early stopping and the
scheduler, all decided on one side's validation figures (scratch's when it runs,
else torch's) so both sides take the same decisions; the test set is evaluated
once, at the end, on the best-by-validation weights.  ``--image-size`` resizes the images once,
at load, and ``--augment*`` jitters each training batch in NumPy (``scratch.augment``, drawn by
seed and epoch); the torch side trains on those very arrays.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from scratch import augment as sa
from scratch import checkpoints as ck
from scratch import optim as soptim
from scratch import training as st
from scratch.data import load_dataset
from torchref import training as tt
from torchref.data import to_tensors
from torchref.device import set_threads
from torchref.run_config import (  # noqa: F401 (re-exported)
    DTYPES,
    IMPLS,
    RESUME_DEFAULTS,
    RESUME_KEYS,
    RunConfig,
    check_config,
    make_scheduler,
)
from torchref.run_report import (  # noqa: F401 (re-exported)
    EPOCH_LINE_LEGEND,
    drift_report,
    epoch_line,
    summary_line,
)

META_KEYS = ("config", "epoch", "step_in_epoch", "global_step", "loss_sums", "train_time",
             "history", "drift", "best", "bad_epochs", "early_stopped", "schedulers", "rng")
BEST = {"scratch": "best.npz", "torch": "best.pt"}   # checkpoint kinds of the best weights


def current_lr(trainer) -> float:
    opt = trainer.optimizer
    return float(opt.param_groups[0]["lr"]) if hasattr(opt, "param_groups") else float(opt.lr)

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
        (x, t), (self.x_test, self.t_test) = load_dataset(cfg.dataset, cfg.data_dir,
                                                          flatten=False, dtype=np_dtype)
        if cfg.image_size:                        # resized once, before the split
            x, self.x_test = (sa.upsample_bilinear(a, cfg.image_size) for a in (x, self.x_test))
        sa.check_shift_fits(cfg.augment, *x.shape[2:])
        self.jitter: dict | None = None           # this epoch's draws (scratch.augment)
        train_idx, val_idx = st.val_split(len(x), cfg.val_fraction, cfg.seed)
        self.x, self.t, self.x_val, self.t_val = x[train_idx], t[train_idx], x[val_idx], t[val_idx]
        try:
            smodel = st.make_model(cfg.model, self.x.shape[1:], 10, seed=cfg.seed,
                                   dtype=np_dtype, hidden=cfg.hidden, dropout=cfg.dropout,
                                   batchnorm=cfg.batchnorm, weight_decay=cfg.weight_decay)
        except ValueError as exc:                 # e.g. images too small for the model's layers
            if not cfg.image_size or not str(exc).startswith("in_shape"):
                raise
            raise ValueError(f"image_size: {cfg.image_size} is too small for --model "
                             f"{cfg.model} ({exc})") from exc
        self.trainers: dict = {}
        self.schedulers: dict = {}
        if cfg.impl in ("scratch", "both"):
            opt = soptim.OPTIMIZERS[cfg.optimizer](lr=cfg.lr)
            self.trainers["scratch"] = st.Trainer(smodel, opt)
            self.schedulers["scratch"] = make_scheduler(cfg, opt, "scratch")
        if cfg.impl in ("torch", "both"):
            tmodel = tt.model_from_scratch(smodel, device=self.info.device, dtype=torch_dtype)
            trainer = tt.TorchTrainer(tmodel, cfg.optimizer, cfg.lr, self.info, amp=cfg.amp,
                                      compile=cfg.compile, weight_decay=cfg.weight_decay)
            trainer.scheduler = make_scheduler(cfg, trainer.optimizer, "torch")
            self.trainers["torch"], self.schedulers["torch"] = trainer, trainer.scheduler
            dev = self.info.device
            self.data_torch = {name: to_tensors(*pair, dev) for name, pair in (
                ("train", (self.x, self.t)), ("val", (self.x_val, self.t_val)),
                ("test", (self.x_test, self.t_test)))}
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.loss_sums = dict.fromkeys(self.trainers, 0.0)
        self.train_time = dict.fromkeys(self.trainers, 0.0)
        self.history: list[dict] = []
        self.drift: list[dict] = []
        self.best: dict = {"epoch": None, "val_acc": None, "val_loss": None}
        self.best_weights: dict = {}      # impl -> the best epoch's weights (a copy)
        self.best_unsaved = False         # best_weights newer than the last checkpoint's
        self.bad_epochs = 0               # epochs since the best one (early stopping)
        self.early_stopped = False
        self.test: dict = {}              # impl -> the test result at the end
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

    @property
    def reference(self) -> str:
        """The side whose validation figures take the decisions (best, early stop, plateau)."""
        return next(iter(self.trainers))

    # -------------------------------------------------------------- checkpoints
    def meta(self) -> dict:
        sched = self.schedulers.get("scratch")
        return {"config": asdict(self.cfg), "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "loss_sums": self.loss_sums, "train_time": self.train_time,
                "history": self.history, "drift": self.drift, "world": self.info.world,
                "best": self.best, "bad_epochs": self.bad_epochs,
                "early_stopped": self.early_stopped,
                "schedulers": {"scratch": sched.state_dict()} if sched else {},
                "rng": {"scratch": self.trainers["scratch"].rng_state()}
                if "scratch" in self.trainers else {}}

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
        if self.best_unsaved:
            for impl, weights in self.best_weights.items():
                write = (lambda tmp, w=weights: st.write_npz(tmp, w)) if impl == "scratch" \
                    else (lambda tmp, w=weights: torch.save(w, tmp))
                writers[BEST[impl]] = write
        ck.save_checkpoint(self.ckpt_dir, f"step{self.global_step:08d}", writers, self.run_id,
                           carry=tuple(BEST[impl] for impl in self.trainers))
        self.best_unsaved = False

    def read_meta(self, path: Path) -> dict:
        """A checkpoint's ``meta.json``, checked; ``ck.Incompatible`` if it is not this run's."""
        meta = json.loads(path.read_text())
        if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
            meta["config"] = {**RESUME_DEFAULTS, **meta["config"]}
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
        if meta["early_stopped"]:
            raise ck.Incompatible(
                f"resume: the run in {self.ckpt_dir} stopped early after epoch {meta['epoch']} "
                f"(no better validation accuracy for {meta['bad_epochs']} epochs); nothing to "
                f"resume")
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
            check_w = self.trainers["scratch"].check_weights
            readers[BEST["scratch"]] = lambda path: check_w(st.load_npz(path))
        if "torch" in self.trainers:
            readers["torch.pt"] = self.trainers["torch"].read
            readers[BEST["torch"]] = self.trainers["torch"].read_weights
        try:
            loaded = ck.load_checkpoint(self.ckpt_dir, readers,
                                        optional=tuple(BEST[impl] for impl in self.trainers))
        except ck.Incompatible:
            raise
        except ck.CheckpointError as exc:
            raise ck.CheckpointError(f"resume: {exc}") from exc
        meta = loaded.values["meta.json"]
        if "scratch" in self.trainers:
            self.trainers["scratch"].load_state_arrays(loaded.values["scratch.npz"])
            if self.schedulers["scratch"] is not None:
                self.schedulers["scratch"].load_state_dict(meta["schedulers"]["scratch"])
            self.trainers["scratch"].set_rng_state(meta["rng"]["scratch"])
        if "torch" in self.trainers:
            self.trainers["torch"].load_state_dict(loaded.values["torch.pt"])
        self.best_weights = {impl: loaded.values[BEST[impl]] for impl in self.trainers
                             if BEST[impl] in loaded.values}
        if (meta["best"]["epoch"] is None) != (not self.best_weights):
            raise ck.CheckpointError(f"resume: {self.ckpt_dir / loaded.stem}.* records best "
                                     f"epoch {meta['best']['epoch']} but best weights "
                                     f"{sorted(self.best_weights) or 'none'}")
        self.run_id, self.warnings = loaded.run, loaded.warnings
        for key in ("epoch", "step_in_epoch", "global_step", "history", "drift", "best",
                    "bad_epochs", "early_stopped"):
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
        # the batch the sides train on, jittered once for both (a plain x[idx] copy only
        # where scratch needs it: torch indexes its own tensor then)
        xb = sa.jitter_batch(self.x, self.jitter, idx) \
            if "scratch" in self.trainers or self.jitter is not None else None
        if "scratch" in self.trainers:
            t0 = time.perf_counter()
            losses["scratch"] = self.trainers["scratch"].step(xb, self.t[idx])
            self.train_time["scratch"] += time.perf_counter() - t0
            self.loss_sums["scratch"] += losses["scratch"]
        if "torch" in self.trainers:
            t0 = time.perf_counter()
            part = np.array_split(np.arange(len(idx)), self.info.world)[self.info.rank]
            mine = torch.as_tensor(idx[part], device=self.info.device)
            x_torch, t_torch = self.data_torch["train"]
            x_mine = x_torch[mine] if self.jitter is None else \
                torch.as_tensor(xb[part], device=self.info.device)   # the same jittered batch
            share = self.trainers["torch"].step(x_mine, t_torch[mine], len(idx))
            losses["torch"] = float(share)   # a sync: keeps the time honest on CUDA
            self.train_time["torch"] += time.perf_counter() - t0
            self.loss_sums["torch"] += losses["torch"]
        if cfg.impl == "both":
            self.drift.append({"step": self.global_step + 1,
                               "loss_diff": abs(losses["scratch"] - losses["torch"]),
                               "param_diff": max_param_diff(
                                   self.trainers["torch"].params_numpy(),
                                   self.trainers["scratch"].params_numpy())})

    def evaluate(self, impl: str, split: str) -> tuple[float | None, float | None]:
        """Mean loss and accuracy of ``impl``'s model on ``split`` (None, None: empty split)."""
        x = {"train": self.x, "val": self.x_val, "test": self.x_test}[split]
        if len(x) == 0:
            return None, None
        if impl == "scratch":
            t = {"train": self.t, "val": self.t_val, "test": self.t_test}[split]
            return self.trainers[impl].evaluate(x, t)
        return self.trainers[impl].evaluate(*self.data_torch[split])

    def end_epoch(self, n_steps: int) -> None:
        """Records, then (on the reference side's validation figures) the best model,
        early stopping and the scheduler's step."""
        for impl in self.trainers:
            total = self.loss_sums[impl]
            if impl == "torch":
                total = float(tt.all_reduce_sum(torch.tensor(total, dtype=torch.float64,
                                                             device=self.info.device),
                                                self.info))
            tr, va = self.evaluate(impl, "train"), self.evaluate(impl, "val")
            self.history.append({"epoch": self.epoch + 1, "impl": impl,
                                 "lr": current_lr(self.trainers[impl]),
                                 "train_loss": total / n_steps, "train_eval_loss": tr[0],
                                 "train_acc": tr[1], "val_loss": va[0], "val_acc": va[1],
                                 "train_time_s": self.train_time[impl]})
        ref = self.history[-len(self.trainers)]
        if ref["val_acc"] is not None:
            better_acc = self.best["val_acc"] is None or ref["val_acc"] > self.best["val_acc"]
            if st.improves(ref["val_acc"], ref["val_loss"], self.best, self.cfg.tie_break):
                self.best = {"epoch": self.epoch + 1, "val_acc": ref["val_acc"],
                             "val_loss": ref["val_loss"]}
                self.best_weights = {impl: tr.weights() for impl, tr in self.trainers.items()}
                self.best_unsaved = True
            # patience counts epochs without a better accuracy (a tie won on loss is not one)
            self.bad_epochs = 0 if better_acc else self.bad_epochs + 1
            patience = self.cfg.early_stop_patience
            self.early_stopped = bool(patience) and self.bad_epochs >= patience
        for sched in self.schedulers.values():
            if sched is None:
                continue
            if self.cfg.scheduler == "plateau":
                sched.step(ref["val_loss"])
            else:
                sched.step()
        self.loss_sums = dict.fromkeys(self.trainers, 0.0)
        self.epoch, self.step_in_epoch = self.epoch + 1, 0

    def final_test(self) -> dict:
        """The test set, once: on the best-by-validation weights (the last without validation)."""
        for impl, trainer in self.trainers.items():
            if self.best_weights:
                trainer.load_weights(self.best_weights[impl])
            loss, acc = self.evaluate(impl, "test")
            self.test[impl] = {"weights": "best" if self.best_weights else "last",
                               "epoch": self.best["epoch"] if self.best_weights else self.epoch,
                               "val_acc": self.best["val_acc"], "test_loss": loss,
                               "test_acc": acc}
        return self.test

    def result(self, stopped: bool) -> dict:
        return {"history": self.history, "drift": self.drift, "stopped": stopped,
                "best": self.best, "early_stopped": self.early_stopped, "test": self.test}

    def run(self) -> dict:
        """Train to ``epochs`` (or early stop); returns ``result()``: history, drift,
        whether it stopped (``stop_after``), the best epoch and the test results."""
        cfg = self.cfg
        # bars only on a terminal: in a log, the per-epoch lines say it without frames
        bar_cls = tt.progress_bar() if cfg.progress and self.info.is_main and \
            sys.stderr.isatty() else None
        while self.epoch < cfg.epochs and not self.early_stopped:
            batches = st.epoch_batches(len(self.x), cfg.batch_size, cfg.seed, self.epoch)
            self.jitter = sa.epoch_jitter(len(self.x), cfg.seed, self.epoch, cfg.augment,
                                          cfg.augment_rotate, cfg.augment_scale)
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
                    return self.result(True)
                if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                    self.save()
            if bar:
                bar.close()
            self.end_epoch(len(batches))
            if self.info.is_main and cfg.progress:
                print(epoch_line(self.history, len(self.trainers)), flush=True)
                if self.early_stopped:
                    print(f"early stop: no better validation accuracy for {self.bad_epochs} "
                          f"epochs (best {self.best['val_acc']:.4f} at epoch "
                          f"{self.best['epoch']})", flush=True)
            if self.ckpt_dir is not None:
                self.save()
        self.final_test()
        return self.result(False)
