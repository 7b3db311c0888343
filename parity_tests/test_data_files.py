"""Data files at the edges: bounded gzip reading, checksums of extracted files, label dtypes,
count mismatches that name the right file and number (issue 11, item 12)."""

from __future__ import annotations

import gzip
import hashlib
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import scratch.data as sd
from torchref.testing import strategies as S

SHARED_MNIST = Path(os.environ.get(
    "TORCHREF_MNIST_DIR",
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")).expanduser()
NO_SHARED = (f"genuine MNIST files not present at {SHARED_MNIST} (set TORCHREF_MNIST_DIR to "
             f"a folder holding them)")


def gzip_bomb(path: Path, header: bytes, inflated: int) -> None:
    """A gzip file of ``header`` followed by ``inflated`` zero bytes, written in streaming
    fashion (the file is about 1/1000 of ``inflated``)."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header)
        zeros = bytes(1 << 20)
        for _ in range(inflated // len(zeros)):
            f.write(zeros)


@pytest.mark.parametrize("inflated", [32 << 20])
def test_gzip_is_read_no_further_than_the_header_declares(inflated: int, tmp_path) -> None:
    """A small gzip file whose IDX header declares 10 bytes but which inflates to 32 MiB: the
    error (trailing bytes) comes after reading 11 bytes, not after inflating everything
    (peak Python allocations stay far below the inflated size)."""
    path = tmp_path / "bomb-labels-idx1-ubyte.gz"
    gzip_bomb(path, S.idx_bytes(0x08, np.zeros(10, np.uint8))[:8], inflated)
    assert path.stat().st_size < inflated // 100
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"trailing bytes.*= 18 bytes") as err:
            sd.load_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < inflated // 8, f"peak {peak} bytes while reading a {inflated}-byte stream"
    assert str(path) in str(err.value) and "reading stopped" in str(err.value)


def test_gzip_reading_is_chunked_even_when_the_header_claims_a_lot(tmp_path) -> None:
    """A header that declares 2**32 - 1 items with a tiny body: no up-front allocation of the
    declared size, a 'truncated' error naming the file."""
    path = tmp_path / "huge-claim.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\xff\xff\xff\xff" + bytes(100)))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"truncated.*4294967295") as err:
            sd.load_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value) and peak < 16 << 20


def test_gzip_crc_is_checked(tmp_path) -> None:
    """A gzip member whose CRC does not match its content is corrupt, not data."""
    data = bytearray(gzip.compress(S.idx_bytes(0x08, np.arange(50, dtype=np.uint8)), mtime=0))
    data[-8] ^= 0xFF              # the CRC32 field of the trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as err:
        sd.load_idx(path)
    assert str(path) in str(err.value)


def test_raw_trailing_bytes_quote_the_file_size(tmp_path) -> None:
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(S.idx_bytes(0x08, np.arange(4, dtype=np.uint8)) + bytes(1000))
    with pytest.raises(ValueError, match=r"trailing bytes.*= 12 bytes, file has 1012"):
        sd.load_idx(path)


# ----------------------------------------------------------------------------- MNIST checks

def write_split(folder: Path, n_images: int, n_labels: int, labels_dtype=np.uint8,
                gz: bool = False) -> dict[str, Path]:
    """The four MNIST files: train with (n_images, n_labels), t10k with 3 and 3."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, ni, nl in (("train", n_images, n_labels), ("t10k", 3, 3)):
        for what, a in (("images-idx3-ubyte", rng.integers(0, 256, (ni, 28, 28), np.uint8)),
                        ("labels-idx1-ubyte", rng.integers(0, 10, nl).astype(labels_dtype))):
            name = f"{split}-{what}"
            paths[name] = folder / (name + ".gz" if gz else name)
            sd.save_idx(paths[name], a)
    return paths


def published(monkeypatch: pytest.MonkeyPatch, paths: dict[str, Path], counts: dict) -> None:
    """Make these files the 'published' MNIST (their MD5 sums and counts)."""
    sums = tuple(sd.md5_file(paths[n]) for n in sd.MNIST_FILES)
    monkeypatch.setitem(sd.MNIST_RAW_MD5, "mnist", sums)
    monkeypatch.setitem(sd.MNIST_KINDS, "mnist", (sd.MNIST_KINDS["mnist"][0], sums))
    monkeypatch.setattr(sd, "MNIST_COUNTS", counts)


def test_extracted_files_are_checksummed(tmp_path, monkeypatch) -> None:
    """verify=True checks extracted (non-.gz) files against the published sums of their
    contents; the message names the file and says 'extracted'."""
    paths = write_split(tmp_path, 4, 4)
    with pytest.raises(ValueError, match=r"MD5 [0-9a-f]{32} does not match the published "
                                         r"mnist extracted sum 6bbc9ace") as err:
        sd.load_mnist(tmp_path)
    assert str(paths["train-images-idx3-ubyte"]) in str(err.value)
    published(monkeypatch, paths, {"train": 4, "t10k": 3})
    (x, t), _ = sd.load_mnist(tmp_path)          # the same files, now the "published" ones
    assert x.shape == (4, 784) and t.shape == (4,)
    sd.save_idx(paths["t10k-labels-idx1-ubyte"], np.array([1, 2, 4], np.uint8))   # one change
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: MD5"):
        sd.load_mnist(tmp_path)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=NO_SHARED)
def test_raw_sums_match_the_genuine_files() -> None:
    """The table's sums of extracted contents, for the genuine files present here."""
    raw = dict(zip(sd.MNIST_FILES, sd.MNIST_RAW_MD5["mnist"], strict=True))
    checked = 0
    for gz in sorted(SHARED_MNIST.glob("*-ubyte.gz")):
        name = gz.name.removesuffix(".gz")
        digest = hashlib.md5(usedforsecurity=False)
        with gzip.open(gz, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
        assert digest.hexdigest() == raw[name], name
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_label_file_is_rejected(dtype, tmp_path) -> None:
    """3.56 must not silently become 3: a float label file is an error naming it."""
    paths = write_split(tmp_path, 3, 3)
    sd.save_idx(paths["train-labels-idx1-ubyte"], np.array([3.56, 1.0, 2.0], dtype))
    with pytest.raises(ValueError, match=r"expected integer labels.*float") as err:
        sd.load_mnist(tmp_path, verify=False)
    assert str(paths["train-labels-idx1-ubyte"]) in str(err.value)


def test_label_count_mismatch_names_the_labels_file_and_the_image_count(tmp_path) -> None:
    """verify=False: 5 images and 4 labels; the labels file is blamed, 5 is expected
    (not 60000, not the images file)."""
    paths = write_split(tmp_path, 5, 4, gz=True)
    with pytest.raises(ValueError) as err:
        sd.load_mnist(tmp_path, verify=False)
    msg = str(err.value)
    assert msg.startswith(str(paths["train-labels-idx1-ubyte"]))
    assert "expected 5 labels" in msg and "got 4" in msg and "60000" not in msg


@pytest.mark.parametrize(("bad", "n_images", "n_labels"), [
    ("train-images-idx3-ubyte", 6, 5), ("train-labels-idx1-ubyte", 5, 6)])
def test_count_mismatch_with_verify_names_the_file_and_its_count(bad, n_images, n_labels,
                                                                 tmp_path, monkeypatch) -> None:
    """verify=True with files whose sums pass but whose counts differ from the split's
    (patched here to 5): the message names the file that is off and the split's count."""
    paths = write_split(tmp_path, n_images, n_labels)
    published(monkeypatch, paths, {"train": 5, "t10k": 3})
    with pytest.raises(ValueError) as err:
        sd.load_mnist(tmp_path)
    msg = str(err.value)
    assert msg.startswith(str(paths[bad])) and "expected 5 " in msg and "got 6" in msg


def test_image_file_of_wrong_shape_names_the_images_file(tmp_path) -> None:
    paths = write_split(tmp_path, 3, 3)
    sd.save_idx(paths["t10k-images-idx3-ubyte"], np.zeros((3, 28, 27), np.uint8))
    with pytest.raises(ValueError, match=r"uint8 images \(N, 28, 28\).*\(3, 28, 27\)") as err:
        sd.load_mnist(tmp_path, verify=False)
    assert str(err.value).startswith(str(paths["t10k-images-idx3-ubyte"]))
