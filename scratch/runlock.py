"""The lock on a run folder, and the cleaning of a killed run's temporary files (pure Python).

``RunLock(folder)`` makes one process the only writer of a run folder (its
metrics, plots and ``checkpoints/``): a second process gets ``LockError`` naming
the folder and the holder (pid, host, start time, command).  While holding it,
``clean_stale_tmp`` removes what ``scratch._atomic.atomic_write`` left behind in a
run that was killed mid-write.  ``usable_folder`` / ``usable_file`` check, before any
work, that a script's output folder or file can be written (a usage error naming the argument).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from scratch._atomic import TMP_PATTERN

LOCK = ".lock"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (True when that cannot be told)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_tmp(folder: str | Path) -> list[Path]:
    """Delete ``atomic_write`` temporary files of dead processes in ``folder``; returns them.

    Only names of ``scratch._atomic``'s pattern (``.{name}.{pid}.{random}.tmp``) whose
    pid runs no more on this host: call it while holding the folder's ``RunLock``.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = TMP_PATTERN.fullmatch(path.name)
        if match and path.is_file() and not path.is_symlink() \
                and not pid_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def usable_folder(folder: str | Path, arg: str = "--out") -> Path:
    """Create ``folder`` (and its parents) for a run's outputs, before any work is done.

    Raises ``ValueError`` naming ``arg`` (the script's argument) when the folder is
    under a file, is a file, cannot be created or cannot be written; returns it.
    """
    folder = Path(folder).expanduser()
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"{arg}: {folder} is not a folder ({blocker} is a file)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{arg}: cannot create the folder {folder} "
                         f"({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{arg}: cannot write in the folder {folder}")
    return folder


def usable_file(path: str | Path, arg: str = "--out") -> Path:
    """Check, before any work, that the file ``path`` can be written (its folder is created).

    Raises ``ValueError`` naming ``arg`` when ``path`` is a folder or its folder is unusable.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{arg}: {path} is a folder, expected a file path")
    usable_folder(path.parent, arg)
    return path


class LockError(ValueError):
    """The run folder is held by another run, or cannot be used; the message says which."""


def holder_info(pid: int | None = None) -> dict:
    """What a lock file records of its holder: pid, host, UTC start time, command."""
    return {"pid": os.getpid() if pid is None else pid, "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "command": " ".join(sys.argv)}


def _describe(info: dict | None) -> str:
    if not info:
        return "holder unknown"
    return (f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"
            f"{', ' + repr(info['command']) if info.get('command') else ''}")


class RunLock:
    """An exclusive lock on a run folder, held from ``acquire`` to ``release`` (or process end).

    The lock is ``fcntl.flock`` on ``folder/.lock``, which records the holder
    (``holder_info``).  The kernel drops a flock when its process dies, so a lock
    file left by a killed run is stale by construction: it is taken over and
    ``acquire`` returns a warning naming the old holder.  Where flock is missing
    (no ``fcntl``, or a file system without locks) the file is created with
    ``O_EXCL`` instead, and it is stale when its holder is on this host and dead.
    ``arg`` prefixes the messages (the script's argument name).
    """

    def __init__(self, folder: str | Path, arg: str = "out") -> None:
        self.folder, self.arg = Path(folder).expanduser(), arg
        self.path = self.folder / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> str | None:
        """Take the lock or raise ``LockError``; returns a warning if it took over a stale one."""
        if self.fd is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        try:
            usable_folder(self.folder, self.arg)
        except ValueError as exc:
            raise LockError(str(exc)) from None
        try:
            old = self._lock_flock()
        except _NoFlock:
            old = self._lock_exclusive()
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, json.dumps(holder_info()).encode())
        os.fsync(self.fd)
        if old is None:
            return None
        return f"took over the lock of {self.folder} from {_describe(old)}, which no longer runs"

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags, 0o666)
        except PermissionError as exc:
            raise LockError(f"{self.arg}: cannot write in {self.folder} "
                            f"({exc.strerror})") from exc
        except OSError as exc:
            if isinstance(exc, (FileExistsError, FileNotFoundError)):
                raise
            raise LockError(f"{self.arg}: cannot write in {self.folder} "
                            f"({exc.strerror or exc})") from exc

    def _read_info(self) -> dict | None:
        try:
            info = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _in_use(self, info: dict | None) -> LockError:
        return LockError(f"{self.arg}: {self.folder} is in use by another run ({_describe(info)});"
                         f" wait for it to finish or choose another folder (lock file "
                         f"{self.path})")

    def _lock_flock(self) -> dict | None:
        try:
            import fcntl
        except ImportError:
            raise _NoFlock from None
        while True:
            try:
                fd, created = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL), True
            except FileExistsError:
                try:
                    fd, created = self._open(os.O_RDWR), False
                except FileNotFoundError:
                    continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._in_use(self._read_info()) from None
            except OSError:          # no locks on this file system
                os.close(fd)
                if created:
                    self.path.unlink(missing_ok=True)
                raise _NoFlock from None
            try:                     # the holder before us may have unlinked the file
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self._read_info()
            os.close(fd)

    def _lock_exclusive(self) -> dict | None:
        taken = None
        while True:
            try:
                self.fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
                return taken
            except FileExistsError:
                info = self._read_info()
                stale = info is not None and info.get("host") == socket.gethostname() \
                    and isinstance(info.get("pid"), int) and not pid_alive(info["pid"])
                if taken is not None or not stale:
                    raise self._in_use(info) from None
                self.path.unlink(missing_ok=True)
                taken = info


class _NoFlock(Exception):
    pass
