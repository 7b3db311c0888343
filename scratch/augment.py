"""Image preparation for training: bilinear resizing (once, at load) and random shifts (per epoch).

Resizing, ``upsample_bilinear(x, size)``: each output pixel ``i`` of ``size`` reads the
input at the source coordinate (pixel centres aligned, torch's ``align_corners=False``)::

    s = max(0, (i + 0.5) * H / size - 0.5),   i0 = floor(s),   i1 = min(i0 + 1, H - 1)
    y[i] = (1 - (s - i0)) * x[i0] + (s - i0) * x[i1]

done along the rows, then along the columns (bilinear is separable).  The 8x8 digits
become 16x16 or 28x28 images, the size the course's DeepConvNet was designed for.

Shifts, ``epoch_shifts`` + ``shift_images``: in each epoch, training sample ``k`` is moved
by ``(dy, dx)`` pixels, each drawn uniformly from ``-max_shift .. max_shift`` by
``default_rng([AUG_STREAM, seed, epoch])``, the pixels that enter from the border are 0::

    out[c, y, x] = img[c, y - dy, x - dx]     (0 where y - dy or x - dx falls outside)

Rotations and scalings, ``epoch_affine`` + ``rotate_scale``: sample ``k`` is turned by an
angle drawn from ``-degrees .. degrees`` and scaled by a factor from ``1 - scale .. 1 + scale``
(``default_rng([AUG_STREAM + 1, seed, epoch])``), about the image centre ``c``; each output
pixel ``p`` reads the input, bilinearly, at ``c + R(angle)^T (p - c) / factor`` (0 outside).
A positive angle turns the image counter-clockwise as displayed (row 0 at the top).  The
shifts come after.

Like ``scratch.training.epoch_order``, the shifts are a pure function of ``(seed, epoch)``:
scratch and torch (``--impl both``) train on the same shifted batches, and a resumed run
redraws exactly the shifts of the epoch it was interrupted in.  Validation and test images
are never shifted.
"""

from __future__ import annotations

import numpy as np

AUG_STREAM = 0x617567   # "aug": a stream apart from epoch_order's and val_split's


def check_image_size(size: object) -> int:
    """A positive whole number of pixels (``--image-size``)."""
    if int(size) != size or size < 1:
        raise ValueError(f"image_size: expected a positive number of pixels, got {size!r}")
    return int(size)


def check_jitter(shift: object, degrees: float, scale: float) -> None:
    """The draws' bounds: whole pixels >= 0, degrees in [0, 180], a scale fraction in [0, 1)."""
    if int(shift) != shift or shift < 0:
        raise ValueError(f"augment: expected a non-negative number of pixels, got {shift!r}")
    if not (np.isfinite(degrees) and 0 <= degrees <= 180):
        raise ValueError(f"augment_rotate: expected degrees in [0, 180], got {degrees!r}")
    if not (np.isfinite(scale) and 0 <= scale < 1):
        raise ValueError(f"augment_scale: expected a fraction in [0, 1), got {scale!r}")


def check_shift_fits(shift: int, h: int, w: int) -> None:
    """A shift of ``shift`` pixels must leave part of an h x w image in view."""
    if shift >= min(h, w):
        raise ValueError(f"augment: a shift of {shift} pixels moves a {h}x{w} image out of view")


def _resize_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``x`` along ``axis`` to ``size`` samples (pixel centres aligned)."""
    n = x.shape[axis]
    s = np.maximum((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = size
    w = (s - i0).astype(x.dtype).reshape(shape)
    return (1 - w) * np.take(x, i0, axis=axis) + w * np.take(x, i1, axis=axis)


def upsample_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """Images (N, C, H, W) -> (N, C, size, size), bilinear, the dtype kept.

    Equals ``torch.nn.functional.interpolate(x, (size, size), mode="bilinear",
    align_corners=False)`` (``parity_tests/test_augment.py`` compares them).
    """
    if x.ndim != 4:
        raise ValueError(f"x: expected images (N, C, H, W), got shape {x.shape}")
    size = check_image_size(size)
    return _resize_axis(_resize_axis(x, size, 2), size, 3)


def epoch_shifts(n: int, max_shift: int, seed: int, epoch: int) -> np.ndarray:
    """(n, 2) integer shifts ``(dy, dx)`` of the ``n`` training samples in ``epoch``."""
    check_jitter(max_shift, 0.0, 0.0)
    rng = np.random.default_rng([AUG_STREAM, seed, epoch])
    return rng.integers(-max_shift, max_shift + 1, size=(n, 2))


def shift_images(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each image ``x[k]`` (C, H, W) moved by ``shifts[k] = (dy, dx)``, zeros entering."""
    if x.ndim != 4 or shifts.shape != (len(x), 2):
        raise ValueError(f"shifts: expected ({len(x)}, 2) shifts for images (N, C, H, W), got "
                         f"{shifts.shape} for {x.shape}")
    _, _, h, w = x.shape
    k = int(np.max(np.abs(shifts), initial=0))
    check_shift_fits(k, h, w)
    padded = np.pad(x, ((0, 0), (0, 0), (k, k), (k, k)))
    out = np.empty_like(x)
    for j, (dy, dx) in enumerate(shifts):
        out[j] = padded[j, :, k - dy:k - dy + h, k - dx:k - dx + w]
    return out


def epoch_affine(n: int, degrees: float, scale: float, seed: int,
                 epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(angles in degrees, scale factors), each (n,), of the ``n`` training samples in ``epoch``."""
    check_jitter(0, degrees, scale)
    rng = np.random.default_rng([AUG_STREAM + 1, seed, epoch])
    return rng.uniform(-degrees, degrees, n), 1 + rng.uniform(-scale, scale, n)


def rotate_scale(x: np.ndarray, angles: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each image ``x[k]`` (C, H, W) turned by ``angles[k]`` degrees and scaled by ``factors[k]``
    about its centre, bilinear, zeros outside (the formula in the module docstring)."""
    n, _, h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    py, px = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    a = np.deg2rad(angles)[:, None, None]
    f = factors[:, None, None]
    sy = (np.cos(a) * py + np.sin(a) * px) / f + cy       # the source of each output pixel
    sx = (-np.sin(a) * py + np.cos(a) * px) / f + cx
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    wy, wx = sy - y0, sx - x0
    k = np.arange(n)[:, None, None]
    out = np.zeros((n, h, w, x.shape[1]))
    for yi, xi, weight in ((y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx),
                           (y0 + 1, x0, wy * (1 - wx)), (y0 + 1, x0 + 1, wy * wx)):
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        tap = x[k, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]     # (N, H, W, C)
        out += (weight * inside)[..., None] * tap
    return out.transpose(0, 3, 1, 2).astype(x.dtype)


def epoch_jitter(n: int, seed: int, epoch: int, shift: int = 0, degrees: float = 0.0,
                 scale: float = 0.0) -> dict[str, np.ndarray] | None:
    """All of ``epoch``'s draws for ``n`` training samples (None when nothing is drawn):
    ``shifts`` (n, 2), and with ``degrees`` or ``scale`` ``angles`` and ``factors`` (n,)."""
    if not (shift or degrees or scale):
        return None
    jitter = {"shifts": epoch_shifts(n, shift, seed, epoch)}
    if degrees or scale:
        jitter["angles"], jitter["factors"] = epoch_affine(n, degrees, scale, seed, epoch)
    return jitter


def jitter_batch(x: np.ndarray, jitter: dict[str, np.ndarray] | None,
                 idx: np.ndarray) -> np.ndarray:
    """The training batch ``x[idx]``, turned and scaled, then shifted, by ``jitter``'s draws."""
    if jitter is None:
        return x[idx]
    xb = x[idx]
    if "angles" in jitter:
        xb = rotate_scale(xb, jitter["angles"][idx], jitter["factors"][idx])
    return shift_images(xb, jitter["shifts"][idx])
