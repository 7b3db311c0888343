"""Checkpoint sets, their pointer, and the lock on a run folder (pure Python, shared by both sides).

A checkpoint is a set of files in one folder (``checkpoints/`` of a run), one per
*kind* (``meta.json``, ``scratch.npz``, ``torch.pt``), all named
``{tag}-{6 hex}.{kind}`` (``step00000030-3f9a2c.scratch.npz``): the random part
makes every save's names new, so no run, no resumed run and no second save at
the same step ever rewrites a file that an older pointer names.

The pointer ``latest.json`` (format 2) names the sets and their SHA-256::

    {"format": 2, "run": "20261203-081500-1a2b3c",
     "files":   {"meta.json": "step00000030-3f9a2c.meta.json", ...},   # the newest set
     "history": [{...older set...}, {...the newest set...}],            # oldest first
     "sha256":  {"step00000030-3f9a2c.meta.json": "9f86d0...", ...}}   # every file named

Guarantees (each tested in ``parity_tests/test_checkpoints.py``):

* files are written atomically (``scratch._atomic``), the pointer last, so a crash
  at any moment leaves the previous pointer and every file it names intact;
* a save deletes only files that the old pointer names and the new one does not;
* every name read from a pointer is checked to be a plain base name
  (``check_name``) before anything is loaded or deleted;
* every file is verified against its SHA-256 when loaded; ``load_checkpoint``
  falls back to the previous set, newest first, and says which and why;
* ``scratch.runlock.RunLock`` keeps a second process out of a run folder while one
  holds it.

Only ``history`` sets of the same ``run`` are kept: a fresh run into the folder
starts its own history (and removes the old run's files once its first set is
complete); a resumed run carries the run id on.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scratch._atomic import atomic_write, write_json_atomic

POINTER = "latest.json"
FORMAT = 2
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}")
HEX64 = re.compile(r"[0-9a-f]{64}")


class CheckpointError(ValueError):
    """A pointer or checkpoint that cannot be used; the message says which file and why."""


class Incompatible(CheckpointError):
    """Raised by a reader for an intact checkpoint that does not fit the run (no fallback)."""


def new_run_id() -> str:
    """A fresh run id: UTC start time and 6 random hex digits (``20261203-081500-1a2b3c``)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_name(name: object, where: str) -> str:
    """``name`` if it is a plain base name (letters, digits, ``_.+-``; no path, no leading dot).

    Anything else (``/abs``, ``../x``, ``a/b``, ``a\\b``, ``C:x``, ``.hidden``, a
    non-string) raises ``CheckpointError`` naming ``where`` and the value.
    """
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise CheckpointError(f"{where}: {name!r} is not a plain file name (expected letters, "
                              f"digits and '_.+-', no folder part); nothing was loaded or "
                              f"deleted")
    return name


# ----------------------------------------------------------------------------- the pointer

def read_pointer(folder: str | Path) -> dict | None:
    """The validated pointer of ``folder`` (None when there is none).

    Raises ``CheckpointError`` for a pointer that is not JSON, not format 2, or
    names anything but plain base names, each with a SHA-256.
    """
    path = Path(folder) / POINTER
    if not path.is_file():
        return None
    try:
        pointer = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a valid checkpoint pointer ({exc}); remove it to "
                              f"start afresh") from exc
    if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
        got = pointer.get("format") if isinstance(pointer, dict) else type(pointer).__name__
        raise CheckpointError(f"{path}: expected a checkpoint pointer of format {FORMAT}, got "
                              f"format {got!r}; remove it (and the files it names) to start "
                              f"afresh")
    history, digests = pointer.get("history"), pointer.get("sha256")
    if not isinstance(pointer.get("run"), str) or not isinstance(digests, dict) \
            or not isinstance(history, list) or not history:
        raise CheckpointError(f"{path}: expected 'run', 'files', a non-empty 'history' and "
                              f"'sha256'; remove it to start afresh")
    for i, files in enumerate(history):
        if not isinstance(files, dict) or not files:
            raise CheckpointError(f"{path}: history[{i}]: expected a mapping kind -> file name, "
                                  f"got {files!r}")
        for kind, name in files.items():
            check_name(name, f"{path}: history[{i}][{kind!r}]")
            if not name.endswith(f".{kind}") or name == POINTER:
                raise CheckpointError(f"{path}: history[{i}][{kind!r}]: expected a name ending "
                                      f"in '.{kind}' (not {POINTER}), got {name!r}")
            if not isinstance(digests.get(name), str) or not HEX64.fullmatch(digests[name]):
                raise CheckpointError(f"{path}: sha256[{name!r}]: expected 64 hex digits, got "
                                      f"{digests.get(name)!r}")
    if pointer.get("files") != history[-1]:
        for kind, name in (pointer.get("files") or {}).items():
            check_name(name, f"{path}: files[{kind!r}]")
        raise CheckpointError(f"{path}: 'files' must be the last 'history' entry")
    return pointer


def named_files(pointer: dict | None) -> set[str]:
    """Every file name a (validated) pointer keeps."""
    return {name for files in (pointer or {}).get("history", []) for name in files.values()}


def save_checkpoint(folder: str | Path, tag: str, writers: dict[str, Callable[[Path], None]],
                    run: str, keep: int = 2, carry: tuple[str, ...] = ()) -> dict[str, str]:
    """Write one checkpoint set, then the pointer naming it; returns ``{kind: file name}``.

    Each ``writers[kind](tmp)`` fills a temporary file, hashed and renamed to
    ``{tag}-{hex}.{kind}``.  Each kind in ``carry`` that has no writer is taken over
    from the newest set of the same ``run`` (same file, same SHA-256), so a file
    written once (the best model) stays named, and kept, by every later set.  The
    new pointer keeps the last ``keep`` sets of this ``run``; then exactly the
    files that the old pointer named and the new one does not are deleted.
    """
    if keep < 1:
        raise ValueError(f"keep: expected a positive integer, got {keep}")
    folder = Path(folder)
    old = read_pointer(folder)
    check_name(tag, "tag")
    while True:
        stem = f"{tag}-{secrets.token_hex(3)}"
        if not any((folder / f"{stem}.{kind}").exists() for kind in writers):
            break
    files = {kind: check_name(f"{stem}.{kind}", "kind") for kind in writers}
    digests: dict[str, str] = {}
    same_run = old is not None and old["run"] == run
    for kind in carry:
        if kind not in writers and same_run and kind in old["files"]:
            files[kind] = old["files"][kind]
            digests[files[kind]] = old["sha256"][files[kind]]
    for kind, write in writers.items():
        def write_and_hash(tmp: Path, write=write, name=files[kind]) -> None:
            write(tmp)
            digests[name] = sha256_file(tmp)
        atomic_write(folder / files[kind], write_and_hash)
    history = [*old["history"], files] if same_run else [files]
    history = history[-keep:]
    kept = {name for entry in history for name in entry.values()}
    digests.update({n: d for n, d in (old or {}).get("sha256", {}).items() if n in kept})
    pointer = {"format": FORMAT, "run": run, "files": files, "history": history,
               "sha256": {n: digests[n] for n in sorted(kept)}}
    write_json_atomic(folder / POINTER, pointer, sort_keys=False)
    for name in named_files(old) - kept:
        (folder / name).unlink(missing_ok=True)
    return files


@dataclass
class Loaded:
    """The newest usable checkpoint set: its files, what the readers returned, what was skipped."""

    run: str
    files: dict[str, str]
    values: dict[str, object]
    warnings: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        kind, name = next(iter(self.files.items()))
        return name[:-len(kind) - 1]


def load_checkpoint(folder: str | Path, readers: dict[str, Callable[[Path], object]],
                    optional: tuple[str, ...] = ()) -> Loaded:
    """Read the newest checkpoint set whose files are all present, intact and readable.

    A kind in ``optional`` is read only when the set names it (``values`` then lacks it).

    For each set, newest first, every kind in ``readers`` is verified against its
    SHA-256 and read (``readers[kind](path)``, which raises on bad content; it
    must not change any state: the caller applies ``Loaded.values``).  A set that
    fails is skipped with a warning naming it, the reason and the set used.
    Raises ``CheckpointError`` when there is no pointer or no usable set; a
    reader's ``Incompatible`` (an intact set that does not fit) goes straight up.
    """
    folder = Path(folder)
    pointer = read_pointer(folder)
    if pointer is None:
        raise CheckpointError(f"no checkpoint in {folder} (no {POINTER})")
    failures: list[tuple[str, str]] = []
    for files in reversed(pointer["history"]):
        stem = Loaded(pointer["run"], files, {}).stem
        try:
            values = {kind: _read_verified(folder, files, kind, pointer["sha256"], read)
                      for kind, read in readers.items()
                      if kind in files or kind not in optional}
        except Incompatible:
            raise
        except CheckpointError as exc:
            failures.append((stem, str(exc)))
            continue
        loaded = Loaded(pointer["run"], files, values)
        loaded.warnings = [f"checkpoint {folder / bad}.* is unusable ({why}); using the previous "
                           f"one, {folder / stem}.*" for bad, why in failures]
        return loaded
    raise CheckpointError(f"no usable checkpoint in {folder}: " +
                          "; ".join(f"{stem}.*: {why}" for stem, why in failures))


def _read_verified(folder: Path, files: dict[str, str], kind: str, digests: dict[str, str],
                   read: Callable[[Path], object]) -> object:
    if kind not in files:
        raise CheckpointError(f"it has no {kind} file")
    path = folder / files[kind]
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"{files[kind]}: {exc.strerror or exc}") from exc
    if digest != digests[files[kind]]:
        raise CheckpointError(f"{files[kind]}: SHA-256 {digest[:12]}... differs from the "
                              f"recorded {digests[files[kind]][:12]}... (damaged or changed)")
    try:
        return read(path)
    except Incompatible:
        raise
    except Exception as exc:       # any reader error (zip, pickle, key, shape): unusable set
        raise CheckpointError(f"{files[kind]}: {type(exc).__name__}: {exc}") from exc
