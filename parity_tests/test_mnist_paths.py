"""The MNIST / Fashion-MNIST paths of train.py and distill.py, end to end, on synthetic files.

No MNIST training images exist on the test machine, so the module writes a
synthetic copy once: torchvision's layout ``root/MNIST/raw/`` (and
``root/FashionMNIST/raw/``) with the four extracted IDX files of the real
counts and shapes (60,000 / 10,000 images 28x28 uint8, labels 0..9), random
pixels.  ``load_mnist(verify=True)`` checks extracted files against the published
MD5 sums of their contents, so for this module the fixture puts the synthetic
files' sums in that table (``scratch.data.MNIST_RAW_MD5``): the scripts then run
the same code, checks included, as on real MNIST.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import scratch.data as sd
from torchref.tolerance import assert_close

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


pytestmark = pytest.mark.usefixtures("one_thread")


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """A data folder with MNIST/raw and FashionMNIST/raw (different random contents), their
    MD5 sums standing in for the published ones while the module runs."""
    root = tmp_path_factory.mktemp("mnist_data")
    arrays = {}
    sums = {}
    for i, kind in enumerate(sd.MNIST_KINDS):
        rng = np.random.default_rng(i)
        raw = sd.mnist_folders(root, kind)[0]
        raw.mkdir(parents=True)
        arrays[kind] = {}
        for split, n in sd.MNIST_COUNTS.items():
            x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            t = rng.integers(0, 10, size=n, dtype=np.uint8)
            sd.save_idx(raw / f"{split}-images-idx3-ubyte", x)
            sd.save_idx(raw / f"{split}-labels-idx1-ubyte", t)
            arrays[kind][split] = (x, t)
        sums[kind] = tuple(sd.md5_file(raw / name) for name in sd.MNIST_FILES)
    with pytest.MonkeyPatch.context() as mp:
        for kind, kind_sums in sums.items():
            mp.setitem(sd.MNIST_RAW_MD5, kind, kind_sums)
        yield root, arrays


@pytest.mark.parametrize("kind", list(sd.MNIST_KINDS))
def test_load_mnist_course_shapes(kind: str, mnist_root: tuple[Path, dict]) -> None:
    """verify=True accepts the full-size extracted files; (N, 784) float32 in [0, 1], int64
    labels; flatten=False gives (N, 1, 28, 28); one-hot rows of the dtype."""
    root, arrays = mnist_root
    (x, t), (xt, tt) = sd.load_mnist(root, kind=kind)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert x.dtype == xt.dtype == np.float32
    assert t.shape == (60000,) and tt.shape == (10000,) and t.dtype == tt.dtype == np.int64
    x_raw, t_raw = arrays[kind]["train"]
    np.testing.assert_array_equal(x, x_raw.reshape(60000, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(t, t_raw)
    np.testing.assert_array_equal(tt, arrays[kind]["t10k"][1])
    assert 0.0 <= x.min() and x.max() <= 1.0
    (x4, _), (_, oh) = sd.load_mnist(root, kind=kind, flatten=False, one_hot_label=True,
                                     dtype=np.float64)
    assert x4.shape == (60000, 1, 28, 28) and x4.dtype == np.float64
    assert oh.shape == (10000, 10) and oh.dtype == np.float64
    np.testing.assert_array_equal(oh.argmax(axis=1), arrays[kind]["t10k"][1])
    # the registry the scripts use: images (N, 1, 28, 28), the same values
    (xd, td), _ = sd.load_dataset(kind, root, dtype=np.float32)
    assert xd.shape == (60000, 1, 28, 28)
    np.testing.assert_array_equal(xd.reshape(60000, 784), x)
    np.testing.assert_array_equal(td, t)


@pytest.mark.parametrize("kind", list(sd.MNIST_KINDS))
def test_train_script_lockstep_on_mnist(kind: str, mnist_root: tuple[Path, dict],
                                        tmp_path: Path) -> None:
    """A full float64 epoch of scratch and torch in lockstep on 60,000 images: every step's
    loss and the final parameters agree within the float64 policy, and the after-epoch
    metrics (loss, accuracy on the full train and test sets) agree between the sides."""
    root, _ = mnist_root
    out = tmp_path / "run"
    result = load_script("train").main([
        "--dataset", kind, "--data-dir", str(root), "--impl", "both", "--epochs", "1",
        "--batch-size", "1000", "--dtype", "float64", "--device", "cpu", "--threads", "1",
        "--no-progress", "--out", str(out)])
    assert not result["stopped"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["dataset"] == kind
    assert report["drift_report"]["steps"] == 54     # 60,000 less 10% validation / 1,000
    drift = report["drift"]
    assert_close(np.array([d["loss_diff"] for d in drift]), np.zeros(len(drift)),
                 msg="per-step |loss_scratch - loss_torch|")
    assert_close(np.array([d["param_diff"] for d in drift]), np.zeros(len(drift)),
                 msg="per-step max |param_scratch - param_torch|")
    rows = {r["impl"]: r for r in report["history"]}
    assert set(rows) == {"scratch", "torch"}
    for key in ("train_loss", "train_eval_loss", "train_acc", "val_loss", "val_acc"):
        assert np.isfinite(rows["scratch"][key])
        assert_close(np.float64(rows["torch"][key]), np.float64(rows["scratch"][key]),
                     msg=key)
    assert (out / "metrics.csv").read_text().count("\n") == 3     # header + one row per impl
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_script_stop_after_on_mnist(mnist_root: tuple[Path, dict],
                                          tmp_path: Path) -> None:
    """--stop-after on the MNIST path: a few steps, a checkpoint, then --resume finishes."""
    root, _ = mnist_root
    out = tmp_path / "run"
    base = ["--dataset", "mnist", "--data-dir", str(root), "--impl", "scratch",
            "--epochs", "1", "--batch-size", "2000", "--threads", "1", "--no-progress",
            "--out", str(out)]
    script = load_script("train")
    first = script.main([*base, "--stop-after", "3"])
    assert first["stopped"] and first["history"] == []
    assert (out / "checkpoints").is_dir()
    done = script.main([*base, "--resume"])
    assert not done["stopped"] and [r["epoch"] for r in done["history"]] == [1]


def test_distill_script_on_mnist(mnist_root: tuple[Path, dict], tmp_path: Path) -> None:
    """distill.py on the MNIST path: a 300-image stratified subset of the 60,000, the full
    10,000-image test set, results.json with the three errors; scratch and torch (float64,
    same weights and batches) give the same errors."""
    root, _ = mnist_root
    rows = {}
    for impl in ("scratch", "torch"):
        out = tmp_path / impl
        result = load_script("distill").main([
            "--dataset", "mnist", "--data-dir", str(root), "--train-size", "300",
            "--seeds", "0", "--epochs", "1", "--teacher-epochs", "1", "--threads", "1",
            "--impl", impl, "--device", "cpu", "--out", str(out)])
        saved = json.loads((out / "results.json").read_text())
        assert saved["n_train"] == 300 and saved["n_test"] == 10000
        assert saved["config"]["dataset"] == "mnist"
        assert saved["per_seed"] == result["per_seed"]
        rows[impl] = saved["per_seed"][0]
        assert set(rows[impl]) == {"teacher", "student_alone", "student_distilled"}
        assert all(0.0 <= v <= 1.0 for v in rows[impl].values())
        assert (out / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key, value in rows["scratch"].items():
        assert_close(np.float64(rows["torch"][key]), np.float64(value), msg=key)
