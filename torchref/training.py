"""The torch side of the training loop: a step on any device, AMP, torch.compile, DDP.

``TorchTrainer.step(x, t, n_global)`` is one optimizer step on this process's
share of a global minibatch of ``n_global`` samples.  The loss it minimises is

    L = (world / n_global) * sum_i CE(logits_i, t_i)     over this process's samples

DistributedDataParallel averages gradients over the ``world`` processes, so
the update is that of ``sum over all n_global samples / n_global``: exactly
the mean loss of the global batch, as a single process computes it, even when
the batch does not split evenly (and ``world = 1`` is the plain mean).

Optimizers come from ``torchref.optim.OPTIMIZERS`` (the course's names): each
entry names its ``torch.optim`` class and keyword arguments, and the trainer
builds that class over ``model.parameters()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scratch._atomic import atomic_write
from torchref import models as tmodels
from torchref.device import resolve_device
from torchref.optim import OPTIMIZERS

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    device: torch.device = CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    Backend nccl on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), gloo on the
    CPU.  Without torchrun it is a single process on ``resolve_device(device)``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world == 1:
        return DistInfo(0, 1, dev)
    import torch.distributed as dist
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev)


def progress_bar():
    """tqdm's class (``tqdm.auto``) for the scripts' progress bars, or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:   # pragma: no cover - tqdm is in the dev extra
        return None
    return tqdm


def cleanup_distributed(synchronize: bool = True) -> None:
    """Leave the process group.

    With ``synchronize`` every process first waits at a barrier: rank 0 hosts the
    rendezvous store, and when it tears the group down while another rank is still
    finishing its last collective, gloo aborts that rank ("terminate called without
    an active exception", seen here about one run in ten).  Error paths pass False,
    since the other processes may never reach the barrier.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``value`` over the processes (itself when single-process)."""
    if info.world > 1:
        import torch.distributed as dist
        value = value.clone()
        dist.all_reduce(value)
    return value


def set_deterministic(enabled: bool = True) -> None:
    """Bitwise-reproducible kernels: ``torch.use_deterministic_algorithms`` and no cuDNN autotune.

    On CUDA, cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set here if unset,
    effective when set before the first cuBLAS call).
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled


def model_from_scratch(smodel, device: torch.device | str | None = None,
                       dtype: torch.dtype | None = None) -> nn.Module:
    """The torchref model of the same class name (``MLP``, ``SimpleConvNet``) with its weights."""
    import importlib
    name = type(smodel).__name__
    cls = getattr(tmodels, name, None)
    if cls is None and name == "SimpleConvNet":
        try:
            cls = getattr(importlib.import_module("torchref.convnet"), name, None)
        except ImportError:
            cls = None
    if cls is None:
        raise ValueError(f"model: torchref.models has no {name} to mirror scratch.models.{name}")
    return cls.from_scratch(smodel, device=device, dtype=dtype)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``torch.optim`` optimizer for the course name ``name`` (``torchref.optim.OPTIMIZERS``);
    ``params``: tensors or param groups (``Network.param_groups(weight_decay)``)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {name!r}")
    spec = OPTIMIZERS[name](lr=lr)
    return spec.optimizer_class(params, **spec.optimizer_kwargs())


def model_params(model: nn.Module, weight_decay: float = 0.0):
    """What the optimizer updates: ``model.parameters()``, or with ``weight_decay`` > 0 the
    course's L2 term as torch.optim's ``weight_decay`` on the weights W only (the gradient
    ``lambda W`` that ``scratch``'s ``gradient`` adds)."""
    if weight_decay:
        return model.param_groups(weight_decay)
    return model.parameters()


def amp_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA (with a GradScaler), bfloat16 on the CPU (no scaling needed)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def upcast(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision (autocast) logits -> float32 for the loss; float32/float64 as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


class TorchTrainer:
    """A torchref model, its ``torch.optim`` optimizer, and the options of ``scripts/train.py``."""

    def __init__(self, model: nn.Module, optimizer: str, lr: float,
                 info: DistInfo | None = None, amp: bool = False,
                 compile: bool = False, weight_decay: float = 0.0) -> None:
        self.info = info or DistInfo(device=next(model.parameters()).device)
        self.model = model.to(self.info.device)
        self.net: nn.Module = model
        if self.info.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)
        if compile:
            self.net = torch.compile(self.net)
        self.optimizer = make_optimizer(optimizer, model_params(self.model, weight_decay), lr)
        self.scheduler = None     # set by the caller (torchref.lockstep); saved with the state
        self.amp = amp
        self.scaler = torch.amp.GradScaler("cuda") if amp and \
            self.info.device.type == "cuda" else None

    def autocast(self) -> torch.autocast:
        dev = self.info.device.type
        return torch.autocast(dev, dtype=amp_dtype(self.info.device), enabled=self.amp)

    def step(self, x: torch.Tensor, t: torch.Tensor, n_global: int | None = None) -> torch.Tensor:
        """One update on this process's samples of a global batch of ``n_global``.

        Returns this process's share of the global mean loss (detached; the sum
        of the shares over the processes is the global batch's mean loss).
        """
        n_global = len(x) if n_global is None else n_global
        self.model.train()      # (not self.net: a compiled or DDP wrapper shares the module)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.net(x)
        share = F.cross_entropy(upcast(logits), t, reduction="sum") / n_global
        loss = share * self.info.world
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return share.detach()

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, t: torch.Tensor,
                 batch_size: int = 1000) -> tuple[float, float]:
        """Mean loss and accuracy over (x, t) (the whole set, on every process)."""
        self.model.eval()        # dropout off, batch norm on its running statistics
        loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
        correct = torch.zeros((), dtype=torch.int64, device=x.device)
        for i in range(0, len(x), batch_size):
            xb, tb = x[i:i + batch_size], t[i:i + batch_size]
            with self.autocast():
                logits = self.model(xb)
            loss_sum += F.cross_entropy(upcast(logits), tb, reduction="sum").double()
            correct += (logits.argmax(dim=-1) == tb).sum()
        return float(loss_sum) / len(x), int(correct) / len(x)

    def params_numpy(self) -> dict[str, np.ndarray]:
        """Parameters in the course's layout and keys, as NumPy arrays."""
        return {k: v.detach().cpu().numpy() for k, v in self.model.params.items()}

    def weights(self) -> dict[str, torch.Tensor]:
        """A copy of the model's ``state_dict`` (parameters and buffers): the best model."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def check_weights(self, state: object) -> dict:
        """``state`` if it has ``weights()``'s keys and shapes, else ``ValueError``."""
        mine = self.model.state_dict()
        if not isinstance(state, dict) or set(state) != set(mine) or any(
                not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape
                for k, v in mine.items()):
            raise ValueError(f"weights: expected the tensors {sorted(mine)} of this model")
        return state

    def load_weights(self, state: dict) -> None:
        self.model.load_state_dict(self.check_weights(state))

    def read_weights(self, path: str | Path) -> dict:
        """Weights saved by ``torch.save(weights())``, loaded ``weights_only`` and checked."""
        return self.check_weights(torch.load(path, map_location=self.info.device,
                                             weights_only=True))

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "cpu_rng": torch.get_rng_state()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.info.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.info.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["cpu_rng"].cpu())
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if "cuda_rng" in state and self.info.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.info.device)

    def check_state(self, state: object) -> dict:
        """``state`` if ``load_state_dict`` can restore it whole, else ``ValueError`` naming what.

        The model's keys and shapes, the optimizer's parameter groups and the CPU RNG state.
        """
        if not isinstance(state, dict):
            raise ValueError(f"checkpoint: expected a dict, got {type(state).__name__}")
        needed = ("model", "optimizer", "cpu_rng", *(("scheduler",) if self.scheduler else ()))
        missing = [k for k in needed if k not in state]
        if missing:
            raise ValueError(f"checkpoint: missing {', '.join(missing)}")
        mine = self.model.state_dict()
        if not isinstance(state["model"], dict) or set(state["model"]) != set(mine):
            got = sorted(state["model"]) if isinstance(state["model"], dict) else state["model"]
            raise ValueError(f"checkpoint model: expected keys {sorted(mine)}, got {got}")
        for k, v in mine.items():
            saved = state["model"][k]
            if not isinstance(saved, torch.Tensor) or saved.shape != v.shape:
                raise ValueError(f"checkpoint model.{k}: expected a tensor of shape "
                                 f"{tuple(v.shape)}, got {getattr(saved, 'shape', saved)!r}")
        opt, groups = state["optimizer"], self.optimizer.state_dict()["param_groups"]
        if not isinstance(opt, dict) or "state" not in opt or \
                [len(g["params"]) for g in opt.get("param_groups", [])] != \
                [len(g["params"]) for g in groups]:
            raise ValueError("checkpoint optimizer: expected the state and parameter groups of "
                             f"{type(self.optimizer).__name__} over this model")
        if not isinstance(state["cpu_rng"], torch.Tensor) or state["cpu_rng"].dtype != torch.uint8:
            raise ValueError("checkpoint cpu_rng: expected a uint8 tensor")
        return state

    def read(self, path: str | Path) -> dict:
        """A state saved by ``save``, checked (``check_state``) but not applied.

        Loaded with ``weights_only=True`` (no arbitrary objects).
        """
        return self.check_state(torch.load(path, map_location=self.info.device,
                                           weights_only=True))

    def save(self, path: str | Path) -> None:
        """``torch.save`` of ``state_dict()`` written atomically (tensors only: no pickle)."""
        state = self.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def load(self, path: str | Path) -> None:
        """Restore from ``save`` (``read``, then ``load_state_dict``)."""
        self.load_state_dict(self.read(path))
