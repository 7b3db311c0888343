"""Atomic file writes (pure Python, shared by ``scratch`` and ``torchref`` like ``_checks``)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

# ``.{name}.{pid}.{8 random}.tmp``: the writer's pid tells a killed run's leftovers
# (``scratch.checkpoints.clean_stale_tmp``) from a live writer's file.
TMP_PATTERN = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.(?P<random>[a-z0-9_]{8})\.tmp")


def current_umask() -> int:
    """The process's umask (read by setting it and putting it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Write a file so that readers see the old content or the new, never a mix.

    ``write(tmp)`` fills a temporary file in the same folder (``TMP_PATTERN``,
    named after the writer's pid); it is flushed to
    disk and renamed over ``path`` (``os.replace`` is atomic on POSIX and
    Windows).  If ``write`` raises (or the process dies), ``path`` is untouched;
    on an exception the temporary file is removed.  The file gets the mode a
    plain ``open(path, "w")`` would give (``0o666`` less the umask, usually
    0644), not the owner-only 0600 of ``tempfile.mkstemp``.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (a rename) to disk, where the OS allows it (POSIX)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)`` done atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, obj: object, sort_keys: bool = True) -> None:
    """``json.dump(obj)`` written atomically."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=sort_keys))
