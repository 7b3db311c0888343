"""Data: the IDX parser on files built here (good and broken), the genuine MNIST files when
present, load_mnist's layouts and messages, torchvision parity when torchvision imports."""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.data as sd
import torchref.data as td
from scratch.training import epoch_batches
from torchref.testing import strategies as S

# The genuine MNIST files (MD5SUMS and the .gz files): $TORCHREF_MNIST_DIR, else
# <checkout>/../shared/data/mnist; the tests that need them skip when the folder is absent.
SHARED_MNIST = Path(os.environ.get(
    "TORCHREF_MNIST_DIR",
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")).expanduser()
NO_SHARED = (f"genuine MNIST files not present at {SHARED_MNIST} (set TORCHREF_MNIST_DIR to "
             f"a folder holding them)")


def torchvision_or_skip():
    try:
        import torchvision  # noqa: F401
        from torchvision.datasets import mnist
    except Exception as exc:   # ImportError, or a torch/torchvision version mismatch
        pytest.skip(f"torchvision does not import here ({type(exc).__name__}: {exc})")
    return mnist


# ----------------------------------------------------------------------------- the parser

@given(case=S.idx_arrays(), compress=st.booleans())
@example(case=(0x08, np.zeros((0, 28, 28), np.uint8)), compress=False)
@example(case=(0x0E, np.array([-0.0, np.inf, -np.inf, 5e-324])), compress=True)
def test_load_idx_reads_files_written_from_the_definition(case: tuple, compress: bool,
                                                          tmp_path_factory) -> None:
    code, array = case
    data = S.idx_bytes(code, array)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    got = sd.load_idx(path)
    assert got.dtype == array.dtype.newbyteorder("=") and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable and got.dtype.isnative
    sd.save_idx(path, array, compress=compress)     # the writer agrees with the definition
    assert sd.read_bytes(path) == data


@given(case=S.idx_arrays(), data=st.data())
def test_truncated_or_padded_file_is_an_error(case: tuple, data: st.DataObject,
                                              tmp_path_factory) -> None:
    code, array = case
    raw = S.idx_bytes(code, array)
    cut = data.draw(st.integers(0, len(raw) - 1), label="bytes kept")
    extra = data.draw(st.binary(min_size=1, max_size=8), label="trailing bytes")
    folder = tmp_path_factory.mktemp("broken")
    for name, content, words in (("short.idx", raw[:cut], "truncated"),
                                 ("long.idx", raw + extra, "trailing")):
        path = folder / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=words) as err:
            sd.load_idx(path)
        assert str(path) in str(err.value)


@pytest.mark.parametrize(("content", "words"), [
    (b"", "truncated IDX header"),
    (b"\x00\x00\x08", "truncated IDX header"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "bad IDX magic"),
    (b"\x00\x00\x0a\x01" + b"\x00\x00\x00\x01" + b"\x05", "unknown IDX dtype code 0x0a"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "the 3 dimensions need 16"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", r"size mismatch \(truncated\).*\(3,\)"),
])
def test_broken_headers_name_file_and_problem(content: bytes, words: str, tmp_path) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=words) as err:
        sd.load_idx(path)
    assert str(path) in str(err.value)


def test_truncated_gzip_is_an_error(tmp_path) -> None:
    path = tmp_path / "labels.gz"
    full = gzip.compress(S.idx_bytes(0x08, np.arange(200, dtype=np.uint8)))
    path.write_bytes(full[:len(full) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as err:
        sd.load_idx(path)
    assert str(path) in str(err.value)


def test_save_idx_rejects_unsupported_arrays(tmp_path) -> None:
    with pytest.raises(ValueError, match="array: expected"):
        sd.save_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="array: expected"):
        sd.save_idx(tmp_path / "x", np.uint8(3))


# ----------------------------------------------------------------------------- load_mnist

def write_mnist(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True,
                seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        sd.save_idx(folder / (name + ".gz" if gz else name), a)
    return arrays


@pytest.mark.parametrize("layout", ["torchvision", "flat"])
@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_layouts(layout: str, kind: str, gz: bool, tmp_path) -> None:
    sub = sd.MNIST_KINDS[kind][0]
    folder = tmp_path / sub / "raw" if layout == "torchvision" else tmp_path
    arrays = write_mnist(folder, gz=gz)
    (x, t), (xt, _) = sd.load_mnist(tmp_path, kind=kind, verify=False)
    assert x.shape == (12, 784) and x.dtype == np.float32 and xt.shape == (5, 784)
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"].reshape(12, -1)
                                  .astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(t, arrays["train-labels-idx1-ubyte"])
    assert t.dtype == np.int64 and 0.0 <= x.min() and x.max() <= 1.0
    (x, t), _ = sd.load_mnist(tmp_path, normalize=False, flatten=False, one_hot_label=True,
                              kind=kind, verify=False)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(t.argmax(axis=1), arrays["train-labels-idx1-ubyte"])
    assert t.shape == (12, 10)


def test_md5_mismatch_and_counts_are_checked(tmp_path) -> None:
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match=r"MD5 [0-9a-f]{32} does not match.*f68b3c2d") as err:
        sd.load_mnist(tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    raw = tmp_path / "raw"
    write_mnist(raw, gz=False)    # extracted files: the published sums of their contents
    with pytest.raises(ValueError, match=r"does not match the published mnist extracted sum"):
        sd.load_mnist(raw)


def test_label_out_of_range_is_an_error(tmp_path) -> None:
    write_mnist(tmp_path)
    sd.save_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(ValueError, match=r"labels 0\.\.9"):
        sd.load_mnist(tmp_path, verify=False)


def test_missing_files_message(tmp_path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        sd.load_mnist(tmp_path, kind="fashion-mnist")
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and "torchvision.datasets.FashionMNIST" \
        in msg and "download=True" in msg and "copy the four files" in msg
    with pytest.raises(ValueError, match="kind: expected one of"):
        sd.load_mnist(tmp_path, kind="emnist")


def test_paths_starting_with_tilde_are_expanded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    arrays = write_mnist(tmp_path / "data" / "MNIST" / "raw")
    (x, _), (_, tv) = sd.load_mnist("~/data", verify=False, normalize=False, flatten=False)
    np.testing.assert_array_equal(x[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(tv, arrays["t10k-labels-idx1-ubyte"])
    sd.save_idx("~/a.idx", np.arange(3, dtype=np.uint8))
    np.testing.assert_array_equal(sd.load_idx("~/a.idx"), np.arange(3))
    assert sd.md5_file("~/a.idx") == sd.md5_file(tmp_path / "a.idx")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nothing"))):
        sd.load_mnist("~/nothing")


def test_missing_files_message_says_how_to_get_torchvision(tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torchvision" else real(name, *a))
    with pytest.raises(FileNotFoundError, match=r"make setup-vision.*pip install torch==\S+ "
                                                r"torchvision=="):
        sd.load_mnist(tmp_path)


def test_load_dataset_registry(tmp_path) -> None:
    (x, _), (xv, _) = sd.load_dataset("digits")
    assert x.shape == (1438, 1, 8, 8) and x.dtype == np.float32 and xv.shape[0] == 359
    write_mnist(tmp_path / "MNIST" / "raw")
    with pytest.raises(ValueError, match="MD5"):
        sd.load_dataset("mnist", tmp_path)
    with pytest.raises(ValueError, match="data_dir"):
        sd.load_dataset("mnist")
    with pytest.raises(ValueError, match="dataset: expected one of"):
        sd.load_dataset("cifar")


# ----------------------------------------------------------------------------- genuine files

@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=NO_SHARED)
def test_genuine_mnist_files() -> None:
    sums = dict(line.split()[::-1] for line in (SHARED_MNIST / "MD5SUMS").read_text()
                .splitlines() if line.strip())
    published = dict(zip(sd.MNIST_FILES, sd.MNIST_KINDS["mnist"][1], strict=True))
    for fname, md5 in sums.items():
        assert sd.md5_file(SHARED_MNIST / fname) == md5 == published[fname.removesuffix(".gz")]
    x = sd.load_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    t = sd.load_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    tr = sd.load_idx(SHARED_MNIST / "train-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert t[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9] and tr[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(t).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(tr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                                        5949]
    with pytest.raises(FileNotFoundError, match="missing train-images-idx3-ubyte"):
        sd.load_mnist(SHARED_MNIST)     # the folder holds the test split and labels only


# ----------------------------------------------------------------------------- torchvision

@given(case=S.idx_arrays(min_side=1))   # torchvision's reader fails on empty arrays
def test_parser_matches_torchvision(case: tuple, tmp_path_factory) -> None:
    mnist = torchvision_or_skip()
    code, array = case
    path = tmp_path_factory.mktemp("tv") / "a-idx"
    path.write_bytes(S.idx_bytes(code, array))
    ours, theirs = sd.load_idx(path), mnist.read_sn3_pascalvincent_tensor(str(path), strict=False)
    np.testing.assert_array_equal(ours, theirs.numpy())
    assert tuple(theirs.shape) == ours.shape


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=NO_SHARED)
def test_genuine_files_match_torchvision(tmp_path) -> None:
    mnist = torchvision_or_skip()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"):
        extracted = tmp_path / name    # torchvision reads the extracted file; a temp copy
        extracted.write_bytes(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()))
        reader = mnist.read_image_file if "images" in name else mnist.read_label_file
        np.testing.assert_array_equal(sd.load_idx(SHARED_MNIST / f"{name}.gz"),
                                      reader(str(extracted)).numpy())


def test_missing_torchvision_message(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ImportError, match=r"make setup-vision.*pip install torch==\S+ "
                                          r"torchvision=="):
        td.load_mnist("/nonexistent")


# ----------------------------------------------------------------------------- torchref.data

def test_loader_follows_the_shared_order(device: torch.device) -> None:
    (x, t), _ = sd.load_digits(flatten=False)
    xt, tt = td.to_tensors(x, t, device, torch.float32)
    assert xt.dtype == torch.float32 and tt.dtype == torch.int64 and xt.device.type == device.type
    order = np.concatenate(epoch_batches(len(x), 100, seed=3, epoch=1))
    for (xb, tb), idx in zip(td.make_loader(xt, tt, 100, order=order),
                             epoch_batches(len(x), 100, seed=3, epoch=1), strict=True):
        np.testing.assert_array_equal(tb.cpu().numpy(), t[idx])
        np.testing.assert_array_equal(xb.cpu().numpy(), x[idx].astype(np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        td.make_loader(xt, tt, 0)


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_torchvision_dataset_matches_load_mnist(kind: str, tmp_path) -> None:
    torchvision_or_skip()
    write_mnist(tmp_path / sd.MNIST_KINDS[kind][0] / "raw", gz=False)
    for flatten, one_hot in ((True, False), (False, True)):
        ours = sd.load_mnist(tmp_path, flatten=flatten, one_hot_label=one_hot, kind=kind,
                             verify=False)
        theirs = td.load_mnist(tmp_path, flatten=flatten, one_hot_label=one_hot, kind=kind)
        for (x, t), (xt, tt) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(xt.numpy(), x)
            np.testing.assert_array_equal(tt.numpy(), t)
