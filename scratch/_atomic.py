"""Atomic file writes (pure Python, shared by ``scratch`` and ``torchref`` like ``_checks``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Write a file so that readers see the old content or the new, never a mix.

    ``write(tmp)`` fills a temporary file in the same folder; it is flushed to
    disk and renamed over ``path`` (``os.replace`` is atomic on POSIX and
    Windows).  If ``write`` raises (or the process dies), ``path`` is untouched;
    on an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: object) -> None:
    """``json.dump(obj)`` written atomically."""
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    atomic_write(path, write)
