"""The run folder of scripts/train.py: one run at a time, a killed run's leftovers, an unusable
--out, the metrics.csv columns and what the logs hold (issue 11, items 3, 5, 6 and 17).

Subprocess tests of the script where the process boundary matters (a second process, a kill);
the variants run the script's ``main`` in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity_tests.script_runs import SCRATCH, SCRIPT, assert_usage_error, main_in_process, train
from scratch.runlock import LockError, RunLock, holder_info

pytestmark = pytest.mark.usefixtures("one_thread")


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
