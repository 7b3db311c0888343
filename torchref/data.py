"""Mirror of ``scratch.data`` for torch: tensors, a ``DataLoader``, and torchvision's MNIST.

The datasets themselves are the NumPy arrays of ``scratch.data`` (one parser,
one split); this module turns them into tensors on a device and offers the
torch way of batching.  ``load_mnist`` reads the same files through
torchvision (``torchvision.datasets.MNIST`` / ``FashionMNIST``), which is
optional: it is imported only when called, with a message naming what to
install when it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

KINDS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def to_tensors(x: np.ndarray, t: np.ndarray, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and integer labels as tensors on ``device`` (images cast to ``dtype`` if given)."""
    xt = torch.as_tensor(x, device=device)
    if dtype is not None:
        xt = xt.to(dtype)
    return xt, torch.as_tensor(t, device=device, dtype=torch.int64)


class FixedOrderSampler(Sampler[int]):
    """Yields the indices of a precomputed order (e.g. ``scratch.training.epoch_order``)."""

    def __init__(self, order: Sequence[int]) -> None:
        self.order = [int(i) for i in order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def make_loader(x: torch.Tensor, t: torch.Tensor, batch_size: int,
                order: Sequence[int] | None = None, shuffle: bool = False,
                seed: int = 0) -> DataLoader:
    """A ``DataLoader`` over (x, t): in ``order`` when given, else seeded shuffling."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    dataset = TensorDataset(x, t)
    if order is not None:
        return DataLoader(dataset, batch_size=batch_size, sampler=FixedOrderSampler(order))
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen)


#: torch and the torchvision release built for it, installed together (``make setup-vision``).
TORCHVISION_PAIR = ("torch==2.14.1", "torchvision==0.29.1")


def import_torchvision():
    """torchvision, or an ImportError that says exactly how to get it."""
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError(
            f"torchvision is not installed (it is optional; scratch.data.load_mnist reads the "
            f"same files without it).  Each torchvision release is built for one torch "
            f"release (torch here: {torch.__version__}), and installing torchvision alone "
            f"replaces torch, so install the pair: make setup-vision in a checkout, or "
            f"pip install {' '.join(TORCHVISION_PAIR)} (PyPI's build: 21 wheels, "
            f"a 3 GB download with CUDA libraries)") from exc
    return torchvision


def load_mnist(root: str | Path, normalize: bool = True, flatten: bool = True,
               one_hot_label: bool = False, kind: str = "mnist",
               dtype: torch.dtype = torch.float32):
    """``scratch.data.load_mnist``'s return, as tensors read by torchvision.

    Needs torchvision's layout ``root/MNIST/raw/`` (``FashionMNIST``) with the
    four files extracted (``download=True`` does that where online).
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {sorted(KINDS)}, got {kind!r}")
    tv = import_torchvision()
    cls = getattr(tv.datasets, KINDS[kind])
    out = []
    for train in (True, False):
        ds = cls(str(Path(root).expanduser()), train=train, download=False)
        x, t = ds.data, ds.targets.to(torch.int64)
        x = x.reshape(len(x), -1) if flatten else x.unsqueeze(1)
        if normalize:
            x = x.to(dtype) / 255.0
        if one_hot_label:
            t = torch.nn.functional.one_hot(t, 10).to(dtype)
        out.append((x, t))
    return out[0], out[1]
