"""Measure the float32 divergence of the distillation loss documented in torchref.tolerance.

For each temperature, 500 random cases (N <= 8, 2 <= C <= 10, logits of scale 1, 10 or
1e4, alpha = 1, seed 1): the largest |scratch - torchref| of the float32 total loss, as a
multiple of the float32 tolerance ``atol + rtol |L|``.  The terms (KL, CE) stay within it.

    python scripts/kl_float32_divergence.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scratch.distillation as sd
import torchref.distillation as td
from torchref.tolerance import tolerance


def main() -> None:
    tol = tolerance(np.float32)
    rng = np.random.default_rng(1)
    for T in (0.1, 1.0, 2.0, 4.0, 10.0, 20.0, 100.0):
        worst = 0.0
        for _ in range(500):
            n, c = rng.integers(1, 9), rng.integers(2, 11)
            scale = rng.choice([1.0, 10.0, 1e4])
            s = (rng.standard_normal((n, c)) * scale).astype(np.float32)
            t = (rng.standard_normal((n, c)) * scale).astype(np.float32)
            y = rng.integers(0, c, n)
            ours = float(sd.distillation_loss(s, t, y, T, 1.0))
            theirs = float(td.distillation_loss(torch.from_numpy(s), torch.from_numpy(t),
                                                torch.from_numpy(y), T, 1.0))
            worst = max(worst, abs(ours - theirs) / (tol.atol + tol.rtol * abs(ours)))
        print(f"T = {T:>5}: max |diff| / (atol + rtol |L|) = {worst:.3g}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                            epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
