"""Checkpoint guarantees of scripts/train.py (issue 11, items 1, 2, 4): nothing the pointer keeps
is deleted, nothing outside checkpoints/ is touched, damaged files are found and skipped.

Each guarantee has a subprocess test of the script (as a user runs it); the variants run the
script's ``main`` in this process (the same code path, without the start-up cost of torch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from parity_tests.script_runs import (
    SCRATCH,
    assert_usage_error,
    copy_run,
    load_script,
    main_in_process,
    pointer,
    snapshot,
    train,
)
from scratch import checkpoints as ck

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- 1. names, deletion

def test_issue_reproduction_second_run_then_resume(tmp_path) -> None:
    """Issue 11.1: a second run into one --out, stopped, then resumed: every file the pointer
    names exists (no save deletes what the new pointer keeps) and the resume works."""
    out = str(tmp_path / "D")
    first = train("--impl", "scratch", "--epochs", "3", "--out", out)
    assert first.returncode == 0, first.stderr
    stopped = train("--impl", "scratch", "--epochs", "3", "--batch-size", "10", "--stop-after",
                    "30", "--out", out)
    assert stopped.returncode == 0 and "continue with --resume" in stopped.stdout, stopped.stderr
    # a fresh run starts its own history: the first run's sets are gone once its set is written
    kept = pointer(Path(out))["history"]
    assert len(kept) == 1 and sorted(p.name for p in (Path(out) / "checkpoints").iterdir()) == \
        sorted(["latest.json", *kept[0].values()])
    resumed = train("--impl", "scratch", "--epochs", "3", "--batch-size", "10", "--stop-after",
                    "30", "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "(global step 30)" in resumed.stdout
    names = [n for files in pointer(Path(out))["history"] for n in files.values()]
    assert len(set(names)) == len(names) >= 2
    assert all((Path(out) / "checkpoints" / n).is_file() for n in names)


def test_saves_at_one_tag_keep_every_named_file(tmp_path) -> None:
    """Three saves under the same tag (as a checkpoint at an epoch's last step and the epoch's
    own checkpoint are): names stay unique, the kept ones verify, the dropped one is gone."""
    for i in range(3):
        ck.save_checkpoint(tmp_path, "step00000015", {"a.txt": lambda p, i=i: p.write_text(
            str(i))}, run="r")
    p = ck.read_pointer(tmp_path)
    assert len(p["history"]) == 2 and p["files"] == p["history"][-1]
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        [ck.POINTER, *(files["a.txt"] for files in p["history"])])
    loaded = ck.load_checkpoint(tmp_path, {"a.txt": lambda path: path.read_text()})
    assert loaded.values == {"a.txt": "2"} and not loaded.warnings


# ----------------------------------------------------------------------------- 2. pointer names

BAD_NAMES = ["ABS", "../victim.txt", "../../victim.txt", "sub/x.npz", "..", ".", "a\\b.npz",
             "C:victim.txt", ".hidden.npz", "", 7, None]


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory) -> Path:
    """A scratch run with two checkpoint sets (ends of epochs 1 and 2), copied by each test."""
    out = tmp_path_factory.mktemp("base") / "run"
    script = load_script()
    script.main([*SCRATCH, "--epochs", "2", "--batch-size", "500", "--out", str(out)])
    return out


def plant_name(out: Path, name: object, victim: Path, where: str) -> None:
    p = pointer(out)
    kind = "scratch.npz"
    name = str(victim) if name == "ABS" else name
    if where == "files":
        p["files"][kind] = name
    p["history"][0][kind] = name
    (out / "checkpoints" / "latest.json").write_text(json.dumps(p))


@pytest.mark.parametrize("resume", [False, True], ids=["fresh-run", "resume"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_pointer_names_other_than_plain_base_names_are_refused(scratch_run, tmp_path, capsys,
                                                               name, resume: bool) -> None:
    """Issue 11.2: a crafted latest.json naming a path is a usage error; nothing is loaded or
    deleted, inside or outside checkpoints/ (a fresh run would delete old sets at its saves)."""
    out = copy_run(scratch_run, tmp_path / "run")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    plant_name(out, name, victim, "files" if resume else "history")
    before = snapshot(tmp_path)
    code, _, err = main_in_process([*SCRATCH, "--epochs", "4" if resume else "2",
                                    "--batch-size", "500", "--out", str(out),
                                    *(["--resume"] if resume else [])], capsys)
    assert_usage_error(code, err, "--resume: " if resume else "--out: ", "latest.json",
                       "is not a plain file name")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("kind", "name"), [("json", ck.POINTER), ("scratch.npz", "x.pt"),
                                           ("scratch.npz", "step1-abcdef.scratch.npz.bak")])
def test_pointer_names_must_end_in_their_kind_and_never_name_the_pointer(tmp_path, kind: str,
                                                                        name: str) -> None:
    """A set naming the pointer itself (deleted at the next save) or a file of another kind."""
    ck.save_checkpoint(tmp_path, "s1", {kind: lambda p: p.write_text("1")}, run="r")
    p = json.loads((tmp_path / ck.POINTER).read_text())
    p["sha256"][name] = p["sha256"].pop(p["files"][kind])
    p["files"][kind] = p["history"][0][kind] = name
    (tmp_path / ck.POINTER).write_text(json.dumps(p))
    with pytest.raises(ck.CheckpointError, match=f"expected a name ending in '.{kind}'"):
        ck.save_checkpoint(tmp_path, "s2", {kind: lambda p: p.write_text("2")}, run="r")
    assert json.loads((tmp_path / ck.POINTER).read_text()) == p


def test_script_refuses_an_absolute_name_in_history_and_deletes_nothing(scratch_run,
                                                                         tmp_path) -> None:
    out = copy_run(scratch_run, tmp_path / "run")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    plant_name(out, "ABS", victim, "history")
    before = snapshot(tmp_path)
    proc = train(*SCRATCH, "--epochs", "2", "--batch-size", "500", "--out", str(out))
    assert_usage_error(proc.returncode, proc.stderr, "--out: ", repr(str(victim)),
                       "not a plain file name")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- 4. damaged files

def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def drop_key(path: Path) -> None:
    if path.suffix == ".npz":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "param/W1"}
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        state = torch.load(path, weights_only=True)
        del state["optimizer"]
        torch.save(state, path)


DAMAGES = {"truncated": truncate, "flipped-byte": flip_byte, "missing-key": drop_key}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A scratch and a torch run, each with two checkpoint sets (ends of epochs 1 and 2)."""
    base = tmp_path_factory.mktemp("runs")
    script = load_script()
    for impl in ("scratch", "torch"):
        script.main(["--impl", impl, "--device", "cpu", "--no-progress", "--epochs", "2",
                     "--batch-size", "500", "--out", str(base / impl)])
    return {"npz": base / "scratch", "pt": base / "torch"}


def damage(out: Path, ext: str, how: str, which: str, rehash: bool = False) -> list[str]:
    """Damage the ``.ext`` file of the newest set (or of every set); returns the damaged names.
    ``rehash`` records the damaged file's SHA-256 in the pointer (a consistent but bad file)."""
    p = pointer(out)
    kind = next(k for k in p["files"] if k.endswith(ext))
    sets = [p["files"]] if which == "latest" else p["history"]
    for files in sets:
        path = out / "checkpoints" / files[kind]
        DAMAGES[how](path)
        if rehash:
            p["sha256"][files[kind]] = ck.sha256_file(path)
    (out / "checkpoints" / "latest.json").write_text(json.dumps(p))
    return [files[kind] for files in sets]


def resume_args(ext: str, out: Path) -> list[str]:
    return ["--impl", "scratch" if ext == "npz" else "torch", "--device", "cpu", "--no-progress",
            "--epochs", "3", "--batch-size", "500", "--out", str(out), "--resume"]


def stem(name: str) -> str:
    return name.split(".", 1)[0]


# every damage to either file, found by its SHA-256; and with the pointer's hash rewritten to
# match, found when read (a flipped byte in a .pt's tensor data is then undetectable: no case)
CASES = [(ext, how, False) for ext in ("npz", "pt") for how in sorted(DAMAGES)] + \
    [(ext, how, True) for ext in ("npz", "pt") for how in ("missing-key", "truncated")] + \
    [("npz", "flipped-byte", True)]        # the zip member's CRC-32 catches it


@pytest.mark.parametrize(("ext", "how", "rehash"), CASES,
                         ids=[f"{e}-{h}{'-rehashed' if r else ''}" for e, h, r in CASES])
def test_damaged_latest_falls_back_to_the_previous_set(runs, tmp_path, capsys, ext: str,
                                                       how: str, rehash: bool) -> None:
    """Issue 11.4: a damaged newest checkpoint (found by its SHA-256, or, when the pointer's
    hash was rewritten to match, by reading it) is skipped with a warning naming both sets;
    the run resumes from the previous one, at the start of epoch 2."""
    out = copy_run(runs[ext], tmp_path / "run")
    previous = pointer(out)["history"][0]
    (bad,) = damage(out, ext, how, "latest", rehash)
    code, stdout, err = main_in_process(resume_args(ext, out), capsys)
    assert code == 0, err
    good = stem(next(iter(previous.values())))
    assert f"warning: checkpoint {out / 'checkpoints' / stem(bad)}.* is unusable" in err, err
    assert f"using the previous one, {out / 'checkpoints' / good}.*" in err
    assert f"resumed from {out / 'checkpoints' / good}.* at epoch 2, 0 step(s)" in stdout


@pytest.mark.parametrize("how", sorted(DAMAGES))
@pytest.mark.parametrize("ext", ["npz", "pt"])
def test_no_good_checkpoint_is_a_usage_error(runs, tmp_path, capsys, ext: str, how: str) -> None:
    out = copy_run(runs[ext], tmp_path / "run")
    names = damage(out, ext, how, "all")
    code, _, err = main_in_process(resume_args(ext, out), capsys)
    assert_usage_error(code, err, "--resume: no usable checkpoint in", *map(stem, names))


def test_script_no_good_checkpoint_is_a_usage_error(runs, tmp_path) -> None:
    """A flipped byte in every .pt (it used to load silently): exit 2, both sets named."""
    out = copy_run(runs["pt"], tmp_path / "run")
    names = damage(out, "pt", "flipped-byte", "all")
    proc = train(*resume_args("pt", out))
    assert_usage_error(proc.returncode, proc.stderr, "--resume: no usable checkpoint",
                       "SHA-256", *map(stem, names))
