"""Datasets, returned the course's way: ``(x_train, t_train), (x_test, t_test)``.

``load_digits`` is the embedded default: scikit-learn's bundled handwritten
digits (1,797 real 8x8 images, 10 classes), so everything runs offline.
``load_mnist`` reads MNIST or Fashion-MNIST from IDX files on disk, parsed by
``load_idx`` (below, from the format's definition; no torchvision needed).

The IDX format (LeCun et al., the MNIST files)::

    bytes 0-1   0x00 0x00                 (the magic number's zero half)
    byte  2     dtype code                0x08 uint8, 0x09 int8, 0x0B int16,
                                          0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim                      e.g. 3 for images (N, 28, 28)
    4 * ndim    dims, big-endian uint32   N, rows, cols
    then        prod(dims) items, big-endian, row-major (C order)

So the file size is known from the header: ``4 + 4 ndim + prod(dims) * itemsize``.
A file that disagrees (truncated download, trailing bytes, a file of another
format) is an error that names the file and the numbers, never a short array.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def to_onehot(t: np.ndarray, n_classes: int = 10, dtype: type = np.float64) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, n_classes)."""
    return np.eye(n_classes, dtype=dtype)[t]


def stratified_split(t: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Indices (train, test) with the same class proportions in both parts.

    Each class is shuffled on its own (one seeded generator, classes in
    order) and its first ``round(test_fraction * count)`` samples go to test.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(t):
        idx = rng.permutation(np.flatnonzero(t == c))
        k = round(test_fraction * idx.size)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
                dtype: type = np.float64, test_fraction: float = DIGITS_TEST_FRACTION,
                seed: int = DIGITS_SPLIT_SEED) -> Split:
    """scikit-learn's 8x8 digits, split 80/20 per class with a fixed seed.

    Images are (N, 64) when ``flatten`` else (N, 1, 8, 8); pixel values 0..16
    are scaled to [0, 1] when ``normalize``.  Labels are integers (N,) or
    one-hot (N, 10).  The default split gives 1,438 training and 359 test images
    (per class ``round(0.2 * count)``, Python rounding half to even).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_digits needs scikit-learn: pip install 'torchref[data]' "
                          "(or pip install scikit-learn)") from exc
    bunch = sk_load_digits()
    x = bunch.data.astype(dtype)
    t = bunch.target.astype(np.int64)
    if normalize:
        x /= 16.0
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    tr, te = stratified_split(t, test_fraction, seed)
    t_out = to_onehot(t, 10, dtype) if one_hot_label else t
    return (x[tr], t_out[tr]), (x[te], t_out[te])


# ----------------------------------------------------------------------------- IDX files

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


READ_CHUNK = 1 << 20   # bytes per read: memory follows the data, never a header's claim


def _read_at_most(f: BinaryIO, limit: int | None, out: bytearray | None = None) -> bytearray:
    """``out`` (default empty) grown with ``f``'s bytes to at most ``limit`` bytes in all (no
    limit when None), read in chunks of ``READ_CHUNK``; no copy of what was read."""
    out = bytearray() if out is None else out
    while limit is None or len(out) < limit:
        chunk = f.read(READ_CHUNK if limit is None else min(READ_CHUNK, limit - len(out)))
        if not chunk:
            break
        out += chunk
    return out


@contextlib.contextmanager
def open_maybe_gzip(path: str | Path) -> Iterator[tuple[BinaryIO, bool]]:
    """``(stream, is_gzip)``: the file's bytes, gunzipped as they are read when it starts with
    the gzip magic (whatever its name).  A corrupt or truncated gzip stream (bad CRC, early
    end) raises ``ValueError`` naming the file."""
    path = Path(path).expanduser()
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        try:
            if is_gzip:
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    yield f, True
            else:
                yield raw, False
        except (OSError, EOFError, zlib.error) as exc:
            if not is_gzip:
                raise
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic; at most ``limit``."""
    with open_maybe_gzip(path) as (f, _):
        return bytes(_read_at_most(f, limit))


def idx_layout(data: bytes | bytearray,
               name: str = "<bytes>") -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, dims, total bytes)`` that the IDX header at the start of ``data`` declares.

    ``data`` needs only the header (``4 + 4 ndim`` bytes); a bad or short header is a
    ``ValueError`` naming ``name`` and the problem.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: truncated IDX header: {len(data)} bytes, expected at least 4")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: bad IDX magic number 0x{bytes(data[:4]).hex()}: the first two "
                         f"bytes must be 0x0000 (is this an IDX file?)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX dtype code 0x{code:02x}, expected one of "
                         f"{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions, expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header: {len(data)} bytes, the {ndim} "
                         f"dimensions need {header}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    return dtype, dims, header + math.prod(dims) * dtype.itemsize


def parse_idx(data: bytes | bytearray, name: str = "<bytes>",
              size: str | None = None) -> np.ndarray:
    """Parse the bytes of an IDX file into an array of native byte order (see the module doc).

    ``size`` describes the file's length in the trailing-bytes message (default
    ``len(data)``; ``load_idx`` says where it stopped reading).
    """
    dtype, dims, expected = idx_layout(data, name)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise ValueError(f"{name}: size mismatch ({what}): header says dims {dims} of "
                         f"{dtype.newbyteorder('=').name} = {expected} bytes, file has "
                         f"{size if size and len(data) > expected else len(data)}")
    arr = np.frombuffer(data, dtype=dtype, offset=expected - math.prod(dims) * dtype.itemsize)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))   # a native-order, writable copy


def load_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Reads the header first, then at most the size it declares plus one byte (to
    detect excess): a small gzip file that inflates far beyond its header (a
    "gzip bomb") costs no more than the header's size.  Raises ``ValueError``
    naming the file when it is truncated, has a bad magic number or an unknown
    dtype code, its size disagrees with its header, or its gzip stream is corrupt.
    """
    path = Path(path).expanduser()
    with open_maybe_gzip(path) as (f, is_gzip):
        head = f.read(4)
        if len(head) == 4 and head[:2] == b"\0\0":
            head += f.read(4 * head[3])
        expected = idx_layout(head, str(path))[2]
        data = _read_at_most(f, expected + 1, bytearray(head))
    size = (f"more (the decompressed stream goes on past byte {expected}; reading stopped)"
            if is_gzip else f"{path.stat().st_size}")
    return parse_idx(data, str(path), size)


def save_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip when ``compress``, default: name ends in .gz)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array: expected 1 to 255 dimensions of one of "
                         f"{sorted(d.name for d in codes)}, got {array.dtype} {array.shape}")
    head = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = head + array.astype(IDX_DTYPES[codes[native]]).tobytes()
    path = Path(path).expanduser()
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


# ----------------------------------------------------------------------------- MNIST

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# kind -> (torchvision's folder name, MD5 of the four .gz files in MNIST_FILES order).
# The sums are the published ones, also in torchvision.datasets.MNIST/FashionMNIST.resources.
MNIST_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST", ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": ("FashionMNIST", ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                       "25c81989df183df01b3e8a0aad5dffbe",
                                       "bef4ecab320f06d8554ea6380940ec79",
                                       "bb300cfdad3c16e7a12a480ee83cd310")),
}
# kind -> MD5 of the four extracted files (the gunzipped contents, MNIST_FILES order), as
# torchvision's extraction leaves them beside the .gz.  The three MNIST files of the shared
# genuine set were checked here (parity_tests/test_data_files.py); the others are the sums
# published with the datasets' loaders (several independent sources agree).
MNIST_RAW_MD5: dict[str, tuple[str, ...]] = {
    "mnist": ("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
              "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"),
    "fashion-mnist": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                      "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"),
}
MNIST_COUNTS = {"train": 60000, "t10k": 10000}


def md5_file(path: str | Path) -> str:
    """Hex MD5 of a file (read in 1 MiB chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(Path(path).expanduser(), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mnist_folders(root: str | Path, kind: str = "mnist") -> list[Path]:
    """Where ``load_mnist`` looks, in order: torchvision's ``root/MNIST/raw``, then ``root``."""
    if kind not in MNIST_KINDS:
        raise ValueError(f"kind: expected one of {sorted(MNIST_KINDS)}, got {kind!r}")
    root = Path(root).expanduser()
    return [root / MNIST_KINDS[kind][0] / "raw", root]


# torchvision is built for one torch release: install the two together (the Makefile's
# VISION_SPEC, `make setup-vision`).  PyPI's torchvision beside the CPU torch 2.13.0 that the
# Makefile pins fails to import ("operator torchvision::nms does not exist").
TORCHVISION_PAIR = ("torch==2.14.1", "torchvision==0.29.1")


def torchvision_hint() -> str:
    """How to get torchvision, when it is not installed (empty when it is)."""
    if importlib.util.find_spec("torchvision") is not None:
        return ""
    return (f" (torchvision is not installed; it must match torch, so install the pair: "
            f"make setup-vision in a checkout, or pip install {' '.join(TORCHVISION_PAIR)}, "
            f"a 3 GB download with CUDA libraries)")


def find_mnist_files(root: str | Path, kind: str = "mnist",
                     verify: bool = True) -> dict[str, Path]:
    """The four files of ``kind`` under ``root`` (``name`` or ``name.gz``), MD5-checked.

    A ``.gz`` file is preferred.  With ``verify``, every file's MD5 must match the
    published sum: of the ``.gz`` file (``MNIST_KINDS``), or of the extracted
    contents for an uncompressed file (``MNIST_RAW_MD5``; torchvision extracts them
    next to the .gz).
    """
    folders = mnist_folders(root, kind)
    folder_name, sums = MNIST_KINDS[kind]
    for folder in folders:
        found = {}
        for name in MNIST_FILES:
            for candidate in (folder / f"{name}.gz", folder / name):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if found:
            break
    missing = [n for n in MNIST_FILES if n not in found]
    if missing:
        place = folders[0] if not found else folder
        raise FileNotFoundError(
            f"{kind}: missing {', '.join(missing)} (or .gz) in {place}; looked in "
            f"{' and '.join(str(f) for f in folders)}.  Get the files either way:\n"
            f"  * online, let torchvision download them{torchvision_hint()}: python -c "
            f"\"import torchvision; torchvision.datasets.{folder_name}('{folders[1]}', "
            f"download=True)\" (writes {folders[0]});\n"
            f"  * offline, copy the four files {', '.join(f + '.gz' for f in MNIST_FILES)} "
            f"into {folders[0]} or {folders[1]}.")
    if verify:
        raw_sums = MNIST_RAW_MD5[kind]
        for name, gz_md5, raw_md5 in zip(MNIST_FILES, sums, raw_sums, strict=True):
            path = found[name]
            md5, what = (gz_md5, "") if path.suffix == ".gz" else (raw_md5, " extracted")
            if (got := md5_file(path)) != md5:
                raise ValueError(f"{path}: MD5 {got} does not match the published {kind}{what} "
                                 f"sum {md5} (corrupt or partial download? delete it and "
                                 f"get it again)")
    return found


def load_mnist(root: str | Path, normalize: bool = True, flatten: bool = True,
               one_hot_label: bool = False, kind: str = "mnist",
               dtype: type = np.float32, verify: bool = True) -> Split:
    """MNIST (or ``kind="fashion-mnist"``) from ``root``, the course's way.

    Reads torchvision's layout ``root/MNIST/raw/`` (``root/FashionMNIST/raw/``)
    or a flat folder holding the four IDX files, raw or ``.gz``.  Images are
    (N, 784) when ``flatten`` else (N, 1, 28, 28); uint8 0..255, or ``dtype``
    scaled to [0, 1] when ``normalize``.  Labels are integers (N,) or one-hot
    (N, 10) of ``dtype``.  60,000 training and 10,000 test images (checked, with
    the MD5 sums, when ``verify``; ``verify=False`` accepts any count).
    """
    files = find_mnist_files(root, kind, verify)
    out = []
    for split in ("train", "t10k"):
        x, t = check_mnist_split(files[f"{split}-images-idx3-ubyte"],
                                 files[f"{split}-labels-idx1-ubyte"],
                                 MNIST_COUNTS[split] if verify else None)
        n = len(t)
        x = x.reshape(n, -1) if flatten else x.reshape(n, 1, 28, 28)
        if normalize:
            x = x.astype(dtype) / dtype(255.0)
        t = t.astype(np.int64)
        out.append((x, to_onehot(t, 10, dtype) if one_hot_label else t))
    return out[0], out[1]


def check_mnist_split(images: Path, labels: Path,
                      count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load one split's images and labels; every problem names the file it is in.

    Images must be uint8 (N, 28, 28); labels integers 0..9 of shape (M,) (a float
    label file is an error, never truncated); M == N; and N == ``count`` when given.
    """
    x = load_idx(images)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{images}: expected uint8 images (N, 28, 28), got {x.dtype} "
                         f"{x.shape}")
    t = load_idx(labels)
    if t.dtype.kind not in "ui" or t.ndim != 1:
        raise ValueError(f"{labels}: expected integer labels (N,), got {t.dtype} {t.shape}"
                         f"{' (float labels would be truncated)' if t.dtype.kind == 'f' else ''}")
    if t.size and not 0 <= t.min() <= t.max() <= 9:
        raise ValueError(f"{labels}: expected labels 0..9, got values from {t.min()} to "
                         f"{t.max()}")
    for path, n, what in ((images, len(x), "images"), (labels, len(t), "labels")):
        if count is not None and n != count:
            raise ValueError(f"{path}: expected {count} {what}, got {n}")
    if len(x) != len(t):
        raise ValueError(f"{labels}: expected {len(x)} labels, one per image of {images}, "
                         f"got {len(t)}")
    return x, t


# ----------------------------------------------------------------------------- registry

DATASETS = ("digits", "mnist", "fashion-mnist")


def load_dataset(name: str, data_dir: str | Path | None = None, flatten: bool = False,
                 dtype: type = np.float32) -> Split:
    """``digits`` (embedded) or ``mnist`` / ``fashion-mnist`` from ``data_dir``, normalised,
    integer labels; images (N, 1, H, W) unless ``flatten``."""
    if name == "digits":
        return load_digits(flatten=flatten, dtype=dtype)
    if name in MNIST_KINDS:
        if data_dir is None:
            raise ValueError(f"data_dir: dataset {name!r} is read from disk; give the folder "
                             f"holding {MNIST_KINDS[name][0]}/raw/ or the four IDX files")
        return load_mnist(data_dir, flatten=flatten, kind=name, dtype=dtype)
    raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
