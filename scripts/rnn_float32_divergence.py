"""Measure how far float32 scratch and torch recurrent layers drift apart over 50 steps.

For each cell (RNN, LSTM, GRU) and weight scale, draws ``--cases`` random layers
(N=3, T=50, D=4, H=5; Wx, Wh uniform in [-s, s], biases in [-1, 1], xs in
[-3, 3]) and prints the worst error ratio of hs, dxs and dWh against the
float32 policy (``|a - e| / (atol + rtol |e|)``, above 1 fails).  With s around
1/sqrt(H) or 1 every ratio is well below 1; with s = 3 the tanh RNN and the GRU
are chaotic and amplify the two sides' different rounding far past the policy,
which is why ``torchref.testing.strategies.rnn_case`` scales weights by 1/sqrt(H).

    python scripts/rnn_float32_divergence.py --cases 100
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import scratch.rnn as sr
import torchref.rnn as tr
from torchref.tolerance import tolerance


def worst_ratio(kind: str, scale: float, cases: int, rng: np.random.Generator) -> float:
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    tol = tolerance(torch.float32)
    N, T, D, H = 3, 50, 4, 5
    worst = 0.0
    for _ in range(cases):
        args = [rng.uniform(-1, 1, (D, G * H)) * scale, rng.uniform(-1, 1, (H, G * H)) * scale]
        args += [rng.uniform(-1, 1, G * H) for _ in range(2 if kind == "GRU" else 1)]
        args = [a.astype(np.float32) for a in args]
        xs = rng.uniform(-3, 3, (N, T, D)).astype(np.float32)
        ours = getattr(sr, f"Time{kind}")(*args)
        theirs = getattr(tr, f"Time{kind}")(*(torch.from_numpy(a) for a in args))
        hs = ours.forward(xs)
        dhs = rng.standard_normal(hs.shape).astype(np.float32)
        dxs = ours.backward(dhs)
        xt = torch.from_numpy(xs).requires_grad_(True)
        ht = theirs(xt)
        ht.backward(torch.from_numpy(dhs))
        for a, e in ((ht.detach().numpy(), hs), (xt.grad.numpy(), dxs),
                     (theirs.dWh.numpy(), ours.dWh)):
            worst = max(worst, float(np.max(np.abs(a - e) / (tol.atol + tol.rtol * np.abs(e)))))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cases", type=int, default=100, help="random layers per row")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.cases < 1:
        p.error(f"--cases: expected a positive integer, got {args.cases}")
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    print(f"{'cell':<5} {'weight scale':<13} worst error / float32 tolerance")
    for kind in ("RNN", "LSTM", "GRU"):
        for name, scale in (("1/sqrt(H)", 1 / np.sqrt(5)), ("1", 1.0), ("3", 3.0)):
            print(f"{kind:<5} {name:<13} {worst_ratio(kind, scale, args.cases, rng):.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
