"""Device selection and CPU threads, in one place.

``resolve_device("auto")`` gives CUDA when present, else the CPU;
``"cpu"`` and ``"cuda"`` (or ``"cuda:1"``) are taken as asked, and asking for
CUDA where there is none is an error that says so, never a silent fallback.
``set_threads(n)`` limits torch and NumPy's BLAS to the same number of threads
(the scripts' ``--threads``); ``threads_line()`` says how many each side uses.

The scripts default to one thread: on a shared, busy machine (2 cores, load 5
to 8) two threads made the torch side of ``train.py`` 17 to 52 times slower than
one (BENCHMARKS.md, "Threads"); one thread holds under load.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda[:i]"`` (or a ``torch.device``) into a torch.device."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected one of {DEVICE_CHOICES} (or 'cuda:N'), "
                         f"got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was asked for but torch "
                             f"{torch.__version__} sees no CUDA device; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {device!r} asked for, but only "
                             f"{torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type != "cpu":
        raise ValueError(f"device: expected one of {DEVICE_CHOICES}, got {device!r}")
    return dev


def available_devices() -> list[torch.device]:
    """Every device the parity checks run on here: the CPU, and CUDA when present."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    return devices


def set_threads(n: int) -> object | None:
    """Limit torch's intra-op threads and NumPy's BLAS (through threadpoolctl) to ``n``.

    Returns threadpoolctl's limiter (its ``restore_original_limits()`` undoes the
    BLAS limit), or None when threadpoolctl is not installed: then only torch is
    limited and a note on stderr says so.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads: expected a positive integer, got {n!r}")
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threadpoolctl is not installed, so NumPy's BLAS threads are not limited "
              "(pip install threadpoolctl)", file=sys.stderr)
        return None
    return threadpool_limits(limits=n)


#: The scripts' default ``--threads``: one holds under load (see the module doc).
DEFAULT_THREADS = 1


def blas_threads() -> int | None:
    """Threads of NumPy's BLAS, None when unknown (no threadpoolctl, no BLAS found).

    NumPy's is the library loaded from NumPy's own folder when there is one (a wheel's
    ``numpy.libs``; SciPy may load another BLAS, which scratch does not use), else the
    most threads over the BLAS libraries loaded.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    own = [lib for lib in blas if "numpy" in Path(lib.get("filepath", "")).parent.name]
    counts = [lib["num_threads"] for lib in own or blas]
    return max(counts) if counts else None


def threads_line(sides: tuple[str, ...] = ("scratch", "torch")) -> str:
    """One line for a script's output: the threads each side computes with right now."""
    blas = blas_threads()
    parts = {"scratch": f"scratch (NumPy BLAS) {'unknown' if blas is None else blas}",
             "torch": f"torch {torch.get_num_threads()} intra-op"}
    unknown = set(sides) - set(parts)
    if unknown:
        raise ValueError(f"sides: expected some of {tuple(parts)}, got {sides!r}")
    return "threads: " + ", ".join(parts[side] for side in sides)
