"""Checkpoint guarantees of scripts/train.py: nothing the pointer keeps is deleted, nothing outside
checkpoints/ is touched, one run per folder, damaged files found and skipped, clear errors.

Each guarantee has a subprocess test of the script (as a user runs it); the variants run the
script's ``main`` in this process (the same code path, without the start-up cost of torch).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from scratch import checkpoints as ck
from scratch.runlock import LockError, RunLock, holder_info

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train.py"
SCRATCH = ["--impl", "scratch", "--no-progress"]

pytestmark = pytest.mark.usefixtures("one_thread")


def train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python scripts/train.py ARGS`` in a fresh process, output captured (not a terminal)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def main_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """``scripts/train.py``'s ``main(args)`` here: (exit status, stdout, stderr)."""
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    try:
        script.main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def pointer(out: Path) -> dict:
    return json.loads((out / "checkpoints" / "latest.json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def assert_usage_error(code: int, err: str, *words: str) -> None:
    assert code == 2 and "usage: " in err and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


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
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main([*SCRATCH, "--epochs", "2", "--batch-size", "500", "--out", str(out)])
    return out


def copy_run(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


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


# ----------------------------------------------------------------------------- 3. the lock, 5. tmp

def wait_for_holder(path: Path, proc: subprocess.Popen, pid: bool = True,
                    timeout: float = 120) -> None:
    """Wait until ``path`` names ``proc``'s pid (a lock file), or exists (``pid=False``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if (not pid and path.exists()) or json.loads(path.read_text())["pid"] == proc.pid:
                return
        except (OSError, ValueError, TypeError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared or named pid {proc.pid}")


def test_second_run_is_refused_and_a_killed_run_s_lock_and_tmp_files_are_taken_over(
        tmp_path, capsys) -> None:
    """Issue 11.3 and 11.5: while a run holds --out, a second one exits 2 naming the folder and
    the holder's pid; once the holder is killed (-9, while it checkpoints every epoch), the next
    run takes the lock over with a warning, removes the killed run's temporary files (only
    those) and resumes from an intact checkpoint."""
    out = tmp_path / "D"
    holder = subprocess.Popen([sys.executable, str(SCRIPT), *SCRATCH, "--epochs", "100000",
                               "--batch-size", "500", "--out", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_for_holder(out / ".lock", holder)
        wait_for_holder(out / "checkpoints" / "latest.json", holder, pid=False)
        second = train(*SCRATCH, "--epochs", "1", "--out", str(out))
        assert_usage_error(second.returncode, second.stderr, f"--out: {out} is in use",
                           f"pid {holder.pid} on host", "started ")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    assert (out / ".lock").exists()                  # a kill -9 leaves the lock file
    dead = holder.pid
    stale = [out / f".metrics.json.{dead}.abcd_123.tmp",
             out / "checkpoints" / f".step00000003-abcdef.scratch.npz.{dead}.x1y2z3w4.tmp"]
    kept = [out / ".notes.tmp", out / f".metrics.csv.{os.getpid()}.abcdefgh.tmp"]
    for path in stale + kept:
        path.write_text("partial")
    code, stdout, err = main_in_process([*SCRATCH, "--epochs", "100000", "--batch-size", "500",
                                         "--out", str(out), "--resume", "--stop-after", "1"],
                                        capsys)
    assert code == 0 and "resumed from" in stdout and "unusable" not in err, err
    assert f"warning: took over the lock of {out} from pid {dead}" in err
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert all(str(p) in err for p in stale)
    assert not (out / ".lock").exists()             # released at the end


def test_lock_without_flock_falls_back_to_exclusive_create(tmp_path, monkeypatch) -> None:
    """No flock (a file system without locks): O_EXCL, a live holder refused, a dead one's taken."""
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with RunLock(tmp_path) as first:
        assert json.loads(first.path.read_text())["pid"] == os.getpid()
        with pytest.raises(LockError, match=f"out: {tmp_path} is in use"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps(holder_info(pid=dead.pid)))
    lock = RunLock(tmp_path)
    assert f"from pid {dead.pid} on host" in lock.acquire()
    lock.release()


def read_only_folder(path: Path) -> Path:
    """A folder this user cannot write in: ``path`` made 0o555, or (root writes there anyway)
    Linux's /sys, which refuses even root; skip when there is none."""
    path.mkdir()
    path.chmod(0o555)
    for candidate in (path, Path("/sys/torchref-read-only-test")):
        try:
            candidate.mkdir(exist_ok=True)
            (candidate / "probe").write_text("")
        except OSError:
            return candidate
        (candidate / "probe").unlink()
    pytest.skip("no folder refuses this user's writes (root without /sys)")


@pytest.mark.parametrize("kind", ["file", "under-a-file", "read-only"])
def test_unusable_out_is_a_usage_error_before_training(tmp_path, capsys, kind: str) -> None:
    """Issue 11.5: --out that is a file, lies under a file, or is read-only: exit 2 before the
    first step (no epoch line), naming the folder."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = {"file": blocker, "under-a-file": blocker / "run", "read-only": tmp_path / "ro"}[kind]
    if kind == "read-only":
        out = read_only_folder(out)
    code, stdout, err = main_in_process(["--impl", "scratch", "--epochs", "1", "--out",
                                         str(out)], capsys)
    assert_usage_error(code, err, "--out: ", str(out))
    assert "epoch 1" not in stdout


def test_script_out_is_a_file(tmp_path) -> None:
    out = tmp_path / "file"
    out.write_text("not a folder")
    proc = train("--impl", "scratch", "--epochs", "1", "--out", str(out))
    assert_usage_error(proc.returncode, proc.stderr, f"--out: {out} is not a folder")
    assert "epoch 1" not in proc.stdout and out.read_text() == "not a folder"


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
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
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


@pytest.mark.parametrize("rehash", [False, True], ids=["recorded-hash", "hash-rewritten"])
@pytest.mark.parametrize("how", sorted(DAMAGES))
@pytest.mark.parametrize("ext", ["npz", "pt"])
def test_damaged_latest_falls_back_to_the_previous_set(runs, tmp_path, capsys, ext: str,
                                                       how: str, rehash: bool) -> None:
    """Issue 11.4: a damaged newest checkpoint (found by its SHA-256, or, when the pointer's
    hash was rewritten to match, by reading it) is skipped with a warning naming both sets;
    the run resumes from the previous one, at the start of epoch 2."""
    if rehash and how != "missing-key":
        pytest.skip("a truncated or flipped file with a matching hash: torch/numpy may read it")
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


# ----------------------------------------------------------------------------- 6, 17. logs

def test_csv_columns_are_the_same_after_resume(tmp_path, capsys) -> None:
    """Issue 11.6: metrics.csv has one column order, fresh or resumed after an epoch's end."""
    code, _, err = main_in_process([*SCRATCH, "--epochs", "2", "--out", str(tmp_path / "fresh")],
                                   capsys)
    assert code == 0, err
    part = [*SCRATCH, "--epochs", "2", "--out", str(tmp_path / "part")]
    code, _, err = main_in_process([*part, "--stop-after", "20"], capsys)   # past epoch 1
    assert code == 0, err
    resumed = train(*part, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    header = {name: (tmp_path / name / "metrics.csv").read_text().splitlines()[0]
              for name in ("fresh", "part")}
    assert header["part"] == header["fresh"]


def test_logs_hold_per_epoch_lines_and_no_progress_frames(tmp_path, capsys) -> None:
    """Issue 11.17: output not to a terminal (captured): per-epoch lines, no progress frames."""
    code, out, err = main_in_process(["--impl", "scratch", "--epochs", "2", "--batch-size", "50",
                                      "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and "epoch 1 " in out and "epoch 2 " in out, err
    assert "\r" not in out + err and "it/s" not in err and "epoch 1/2" not in err, err


def test_compile_says_it_compiles_before_it_does(capsys, monkeypatch) -> None:
    """Issue 11.17: --compile prints a line before the first (compiling) step."""
    seen: list[str] = []

    def fake_compile(module):
        def forward(*args):
            if not seen:
                out, err = capsys.readouterr()
                seen.append(out)
                sys.stdout.write(out)
                sys.stderr.write(err)
            return module(*args)
        return forward
    monkeypatch.setattr(torch, "compile", fake_compile)
    code, _, err = main_in_process(["--impl", "torch", "--device", "cpu", "--epochs", "1",
                                    "--batch-size", "500", "--compile", "--no-progress"],
                                   capsys)
    assert code == 0, err
    assert seen and "compiling the model" in seen[0] and "can take a minute" in seen[0]
