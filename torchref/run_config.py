"""The settings of a training run (``scripts/train.py``'s flags) and their checks.

``RunConfig`` holds every flag; ``check_config`` rejects a bad one with a
``ValueError`` naming it.  ``torchref.lockstep.Run`` executes a config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from scratch import augment as sa
from scratch import optim as soptim
from scratch import training as st
from torchref import lr_scheduler as tsched

IMPLS = ("scratch", "torch", "both")
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}
SCHEDULERS = ("none", "step", "cosine", "plateau")
# The course's rules that keep lr inside the velocity: under a schedule they differ from torch.
LR_IN_VELOCITY = ("momentum", "nesterov")
# A resumed run must agree with the checkpoint on these settings.
RESUME_KEYS = ("model", "impl", "dataset", "batch_size", "lr", "optimizer", "seed", "dtype",
               "val_fraction", "hidden", "dropout", "batchnorm", "weight_decay", "scheduler",
               "step_size", "gamma", "t_max", "eta_min", "plateau_factor", "plateau_patience",
               "plateau_cooldown", "min_lr", "early_stop_patience", "image_size", "augment",
               "augment_rotate", "augment_scale", "tie_break")
# Settings added after checkpoints were first written: a checkpoint without them was made
# with these values (the behaviour before the settings existed).
RESUME_DEFAULTS = {"image_size": None, "augment": 0, "augment_rotate": 0.0, "augment_scale": 0.0,
                   "tie_break": "first"}
TORCH_ONLY = ("amp", "compile", "deterministic")   # torch-path options (--impl scratch: none)


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
    # the model
    hidden: list[int] | None = None
    dropout: float = 0.0
    batchnorm: bool = False
    weight_decay: float = 0.0
    # validation, schedule, best model, early stopping
    val_fraction: float = 0.1
    scheduler: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    t_max: int = 0
    eta_min: float = 0.0
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    plateau_cooldown: int = 0
    min_lr: float = 0.0
    early_stop_patience: int = 0
    tie_break: str = "val-loss"
    # the data
    image_size: int | None = None
    augment: int = 0
    augment_rotate: float = 0.0
    augment_scale: float = 0.0


def check_config(cfg: RunConfig, info=None) -> None:
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
    for name in ("checkpoint_every", "stop_after", "threads", "early_stop_patience",
                 "plateau_patience", "plateau_cooldown", "t_max"):
        value = getattr(cfg, name)
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {value}")
    if (cfg.resume or cfg.checkpoint_every or cfg.stop_after) and not cfg.out:
        raise ValueError("out: checkpoints (--resume, --checkpoint-every, --stop-after) need "
                         "an output folder")
    check_model_config(cfg)
    check_schedule(cfg)
    check_data(cfg)


def check_data(cfg: RunConfig) -> None:
    """``image_size`` (None: as stored), ``augment*`` (0: none), ``tie_break``; the images' size is
    checked once they are loaded (``torchref.lockstep.Run``)."""
    if cfg.image_size is not None:
        sa.check_image_size(cfg.image_size)
    sa.check_jitter(cfg.augment, cfg.augment_rotate, cfg.augment_scale)
    if cfg.tie_break not in st.TIE_BREAKS:
        raise ValueError(f"tie_break: expected one of {st.TIE_BREAKS}, got {cfg.tie_break!r}")


def check_model_config(cfg: RunConfig) -> None:
    """The model options: ``hidden`` widths; dropout, batchnorm, weight decay where taken."""
    if cfg.hidden is not None:
        if not cfg.hidden or any(h < 1 for h in cfg.hidden):
            raise ValueError(f"hidden: expected positive widths, got {cfg.hidden}")
        if len(cfg.hidden) > 1 and cfg.model != "mlp":
            raise ValueError(f"hidden: only the mlp takes several widths; the {cfg.model} has "
                             f"one hidden layer, got {cfg.hidden}")
    st.check_model_options(cfg.model, cfg.dropout, cfg.batchnorm, cfg.weight_decay)
    if cfg.dropout > 0 and cfg.impl == "both":
        raise ValueError("dropout: scratch and torch draw different dropout masks, so lockstep "
                         "(--impl both) cannot compare them; use --impl scratch or --impl torch")


def check_schedule(cfg: RunConfig) -> None:
    """The scheduler and its arguments, validation and early stopping."""
    if not (0.0 <= cfg.val_fraction < 1.0):
        raise ValueError(f"val_fraction: expected a fraction in [0, 1), got {cfg.val_fraction}")
    if cfg.scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler: expected one of {SCHEDULERS}, got {cfg.scheduler!r}")
    if cfg.val_fraction == 0:
        for name, used in (("early_stop_patience", cfg.early_stop_patience > 0),
                           ("scheduler", cfg.scheduler == "plateau")):
            if used:
                raise ValueError(f"{name}: needs a validation set, but --val-fraction is 0")
    if cfg.scheduler == "none":
        return
    if cfg.impl == "both" and cfg.optimizer in LR_IN_VELOCITY:
        raise ValueError(f"scheduler: the course's {cfg.optimizer} keeps lr inside its velocity, "
                         f"torch's SGD does not, so under a schedule the two sides differ; "
                         f"lockstep (--impl both) refuses it: use sgd, adagrad, rmsprop or "
                         f"adam, or run one side")
    if cfg.step_size < 1:
        raise ValueError(f"step_size: expected a positive integer, got {cfg.step_size}")
    for name in ("gamma", "eta_min", "min_lr"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: expected a non-negative finite number, got {value}")
    if not (0.0 <= cfg.plateau_factor < 1.0):
        raise ValueError(f"plateau_factor: expected a factor in [0, 1), got "
                         f"{cfg.plateau_factor}")


def make_scheduler(cfg: RunConfig, optimizer, side: str):
    """``cfg.scheduler`` over ``optimizer``: scratch.optim's (side "scratch") or torch's."""
    if cfg.scheduler == "none":
        return None
    module = soptim if side == "scratch" else tsched
    if cfg.scheduler == "step":
        return module.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return module.CosineAnnealingLR(optimizer, T_max=cfg.t_max or cfg.epochs,
                                        eta_min=cfg.eta_min)
    return module.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.plateau_factor,
                                    patience=cfg.plateau_patience,
                                    cooldown=cfg.plateau_cooldown, min_lr=cfg.min_lr)
