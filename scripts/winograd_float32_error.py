"""Measure the float32 rounding error of the Winograd convolution documented in torchref.tolerance.

For a few 3x3, pad 1 or 2 convolutions (inputs uniform in [-1, 1], filters scaled by
1/sqrt(9 C), seed 1): the largest |error| of out, dx and dW against a float64 im2col
reference, for ``scratch.conv.Convolution``'s two float32 paths (im2col and Winograd),
as a ratio Winograd / im2col and as a multiple of the float32 tolerance
``atol + rtol |reference|``.

    python scripts/winograd_float32_error.py
"""

from __future__ import annotations

import argparse

import numpy as np

from scratch.conv import Convolution
from torchref.tolerance import tolerance

SHAPES = [(8, 8, 7, 7, 8, 1), (8, 16, 14, 14, 32, 1), (4, 32, 14, 14, 32, 2),
          (4, 64, 8, 8, 64, 1), (2, 64, 28, 28, 64, 1), (2, 256, 8, 8, 32, 1)]


def errors(algorithm: str, x: np.ndarray, W: np.ndarray, b: np.ndarray, dout: np.ndarray,
           pad: int) -> list[np.ndarray]:
    """out, dx, dW of one path in float32 (as float64 arrays)."""
    conv = Convolution(W.astype(np.float32), b.astype(np.float32), pad=pad)
    conv.algorithm = algorithm
    out = conv.forward(x.astype(np.float32))
    dx = conv.backward(dout.astype(np.float32))
    return [a.astype(np.float64) for a in (out, dx, conv.dW)]


def main() -> None:
    tol = tolerance(np.float32)
    rng = np.random.default_rng(1)
    print("x (N, C, H, W), F, pad     | max|err| Winograd / im2col  | Winograd err / tol  "
          "| im2col err / tol   (out, dx, dW)")
    for n, c, h, w, f, pad in SHAPES:
        x, b = rng.uniform(-1, 1, (n, c, h, w)), rng.uniform(-1, 1, f)
        W = rng.uniform(-1, 1, (f, c, 3, 3)) / np.sqrt(9 * c)
        ref = Convolution(W, b, pad=pad)
        ref.algorithm = "im2col"
        out = ref.forward(x)
        dout = rng.uniform(-1, 1, out.shape)
        exact = [out, ref.backward(dout), ref.dW]
        err = {a: [np.abs(v - e) for v, e in zip(errors(a, x, W, b, dout, pad), exact,
                                                  strict=True)]
               for a in ("im2col", "winograd")}

        of_tol = {a: " ".join(f"{float((e / (tol.atol + tol.rtol * np.abs(r))).max()):5.3f}"
                              for e, r in zip(err[a], exact, strict=True)) for a in err}

        ratio = " ".join(f"{w.max() / i.max():4.2f}"
                         for w, i in zip(err["winograd"], err["im2col"], strict=True))
        print(f"{(n, c, h, w)!s:18} {f:3d} {pad:3d}   | {ratio:27} | {of_tol['winograd']:19} "
              f"| {of_tol['im2col']}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    main()
