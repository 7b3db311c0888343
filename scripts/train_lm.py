"""Train a character-level language model (LSTM or Transformer; scratch or torch) and sample.

The text needs no network: by default it is this repository's own README.md
(``--corpus readme``); ``--corpus pydoc`` takes the documentation topics that
ship inside CPython (``pydoc_data.topics``, Python Software Foundation License),
and any other value is read as a path to a UTF-8 text file.  The last 10% of
the text is held out for the validation perplexity.

``--model lstm`` (scratch.lm.LSTMLM) trains by truncated backprop through time:
the text is cut into ``--batch-size`` parallel streams, read ``--bptt``
characters at a time; the LSTM state carries over from one window to the next
(``stateful=True``) while the gradient stops at the window's start.
``--model transformer`` (scratch.lm_transformer.TransformerLM: embedding +
positional encoding, ``--layers`` causal Transformer blocks, per-step affine)
has no state, so truncated BPTT does not apply: it trains on the same fixed
windows of ``--bptt`` characters, each window its own context (``--bptt`` is
its context length, also for sampling); ``--hidden`` is unused.  The global gradient norm is clipped
to ``--clip`` before each update.  Each epoch prints the train and validation
perplexity (exp of the mean cross-entropy per character) and a sample.  The
curves go to ``OUT/perplexity.png`` and the numbers to ``OUT/history.json``.

    python scripts/train_lm.py --impl scratch --epochs 5
    python scripts/train_lm.py --impl torch --device auto --epochs 20 --hidden 256
    python scripts/train_lm.py --model transformer --impl torch --epochs 5
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_corpus(corpus: str) -> tuple[str, str]:
    """(text, description of where it comes from)."""
    if corpus == "readme":
        path = ROOT / "README.md"
        return path.read_text(encoding="utf-8"), f"{path} (this repository's README)"
    if corpus == "pydoc":
        import pydoc_data.topics
        topics = pydoc_data.topics.topics
        return "\n".join(topics[k] for k in sorted(topics)), \
            "pydoc_data.topics (CPython's documentation topics, PSF License)"
    path = Path(corpus)
    if not path.is_file():
        raise ValueError(f"--corpus: expected 'readme', 'pydoc' or a text file, got {corpus!r}")
    return path.read_text(encoding="utf-8"), str(path)


def build_scratch_model(args: argparse.Namespace, vocab: int) -> object:
    """The scratch model that ``--model`` names, seeded by ``--seed`` (both sides start here)."""
    dtype = np.dtype(args.dtype)
    if args.model == "transformer":
        import scratch.lm_transformer
        return scratch.lm_transformer.TransformerLM(
            vocab, args.embed, args.heads, args.layers, args.ff_expansion, args.bptt,
            seed=args.seed, dtype=dtype)
    import scratch.lm
    return scratch.lm.LSTMLM(vocab, args.embed, args.hidden, seed=args.seed, dtype=dtype)


def windows(ids: np.ndarray, batch: int, bptt: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(xs, ts) windows (batch, <= bptt) over ``batch`` parallel streams of the text; ts is
    xs shifted by one character."""
    n = (len(ids) - 1) // batch
    if n < 1:
        raise ValueError(f"--batch-size: {batch} streams need at least {batch + 1} characters, "
                         f"the text has {len(ids)}")
    xs = ids[:n * batch].reshape(batch, n)
    ts = ids[1:n * batch + 1].reshape(batch, n)
    return [(xs[:, i:i + bptt], ts[:, i:i + bptt]) for i in range(0, n, bptt)]


class ScratchSide:
    def __init__(self, args: argparse.Namespace, vocab: int) -> None:
        import scratch.optim
        self.model = build_scratch_model(args, vocab)
        self.opt = scratch.optim.OPTIMIZERS[args.optimizer](lr=args.lr)
        self.clip, self.clip_grads = args.clip, scratch.optim.clip_grads
        self.rng = np.random.default_rng(args.seed)

    def step(self, xs: np.ndarray, ts: np.ndarray) -> float:
        grads = self.model.gradient(xs, ts)
        self.clip_grads(grads, self.clip)
        self.opt.update(self.model.params, grads)
        return float(self.model.last_layer.loss)

    def loss(self, xs: np.ndarray, ts: np.ndarray) -> float:
        return float(self.model.loss(xs, ts))

    def sample(self, start: list[int], length: int) -> list[int]:
        return self.model.generate(start, length, self.rng)


class TorchSide:
    def __init__(self, args: argparse.Namespace, vocab: int) -> None:
        import torch

        from torchref.device import resolve_device
        from torchref.lm import LSTMLM
        from torchref.lm_transformer import TransformerLM
        from torchref.training import make_optimizer
        self.torch = torch
        self.device = resolve_device(args.device)
        smodel = build_scratch_model(args, vocab)       # the same initial weights
        cls = TransformerLM if args.model == "transformer" else LSTMLM
        self.model = cls.from_scratch(smodel, device=self.device)
        self.opt = make_optimizer(args.optimizer, self.model.parameters(), args.lr)
        self.clip = args.clip
        self.gen = torch.Generator().manual_seed(args.seed)

    def _t(self, a: np.ndarray) -> object:
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def step(self, xs: np.ndarray, ts: np.ndarray) -> object:
        self.opt.zero_grad(set_to_none=True)
        loss = self.model.loss(self._t(xs), self._t(ts))
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return loss.detach()

    def loss(self, xs: np.ndarray, ts: np.ndarray) -> float:
        with self.torch.no_grad():
            return float(self.model.loss(self._t(xs), self._t(ts)))

    def sample(self, start: list[int], length: int) -> list[int]:
        return self.model.generate(start, length, self.gen)


def evaluate(side: object, data: list) -> float:
    """Perplexity over windows (LSTM: the state carried from one window to the next)."""
    side.model.reset_state()
    total = sum(side.loss(xs, ts) * xs.size for xs, ts in data)
    side.model.reset_state()
    return math.exp(total / sum(xs.size for xs, _ in data))


def plot(history: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scratch._atomic import atomic_write
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_ppl"] for h in history], "o-", label="train")
    ax.plot(epochs, [h["valid_ppl"] for h in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity per character")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", choices=["lstm", "transformer"], default="lstm",
                   help="lstm: truncated BPTT, state carried across windows; transformer: "
                   "fixed windows of --bptt characters, no state (default %(default)s)")
    p.add_argument("--impl", choices=["scratch", "torch"], default="scratch")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                   help="torch only (default %(default)s)")
    p.add_argument("--corpus", default="readme", help="readme, pydoc or a path (default "
                   "%(default)s)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16, help="parallel streams")
    p.add_argument("--bptt", type=int, default=32, help="characters per window (lstm: the "
                   "truncation length; transformer: the context length)")
    p.add_argument("--embed", type=int, default=32, help="embedding size (transformer: the "
                   "model width E)")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size (lstm only)")
    p.add_argument("--heads", type=int, default=4, help="attention heads, dividing --embed "
                   "(transformer only)")
    p.add_argument("--layers", type=int, choices=[1, 2], default=2,
                   help="Transformer blocks (transformer only)")
    p.add_argument("--ff-expansion", type=int, default=4, help="feed-forward width / --embed "
                   "(transformer only)")
    p.add_argument("--optimizer", default="adam", help="a scratch.optim.OPTIMIZERS name")
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--clip", type=float, default=1.0, help="max global gradient norm")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-length", type=int, default=200)
    p.add_argument("--threads", type=int, default=0, help="0: the library default")
    p.add_argument("--out", default="runs/lm", help="folder for history.json and perplexity.png")
    p.add_argument("--no-progress", action="store_true", help="no per-window progress line")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "bptt", "embed", "hidden", "heads", "ff_expansion",
                 "sample_length"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, "
                    f"got {getattr(args, name)}")
    if args.model == "transformer" and args.embed % args.heads:
        p.error(f"--heads: expected a divisor of --embed {args.embed}, got {args.heads}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error(f"--lr: expected a positive finite number, got {args.lr}")
    if not (args.clip > 0 and math.isfinite(args.clip)):
        p.error(f"--clip: expected a positive finite number, got {args.clip}")
    from scratch.optim import OPTIMIZERS
    if args.optimizer not in OPTIMIZERS:
        p.error(f"--optimizer: expected one of {sorted(OPTIMIZERS)}, got {args.optimizer!r}")
    if args.impl == "scratch" and args.device not in ("auto", "cpu"):
        p.error(f"--device: the scratch implementation runs on the CPU, got {args.device!r}")
    try:
        if args.impl == "torch":
            from torchref.device import resolve_device
            resolve_device(args.device)
        from scratch.runlock import usable_folder
        usable_folder(args.out, "--out")
    except ValueError as exc:
        p.error(str(exc) if str(exc).startswith("--") else f"--{exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from scratch._atomic import write_json_atomic
    from torchref.device import set_threads
    limiter = set_threads(args.threads) if args.threads else None  # noqa: F841 (kept in force)
    try:
        text, source = load_corpus(args.corpus)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    cut = int(0.9 * len(ids))
    stream = (cut - 1) // args.batch_size      # characters per stream of the training text
    if args.bptt > stream:
        print(f"error: --bptt: {args.bptt} characters per window, but each of the "
              f"{args.batch_size} streams of the training text ({cut:,} characters) has "
              f"{stream}; use a smaller --bptt or --batch-size", file=sys.stderr)
        return 2
    train = windows(ids[:cut], args.batch_size, args.bptt)
    valid = windows(ids[cut:], min(args.batch_size, max(1, (len(ids) - cut - 1) // args.bptt)),
                    args.bptt)
    side = (ScratchSide if args.impl == "scratch" else TorchSide)(args, len(chars))
    where = "" if args.impl == "scratch" else f" on {side.device}"
    print(f"corpus: {source}: {len(text):,} characters, vocabulary {len(chars)}; "
          f"{args.model}, {args.impl}{where}, {len(train)} windows of "
          f"{args.batch_size}x{args.bptt} per epoch")
    out = Path(args.out)
    history: list[dict] = []
    start = [index[c] for c in "The "] if all(c in index for c in "The ") else [ids[0]]
    for epoch in range(1, args.epochs + 1):
        t0, losses, chars_seen = time.perf_counter(), [], 0
        side.model.reset_state()
        for i, (xs, ts) in enumerate(train, start=1):
            losses.append(side.step(xs, ts))
            chars_seen += xs.size
            if not args.no_progress and (i % 20 == 0 or i == len(train)):
                print(f"\r  epoch {epoch} window {i}/{len(train)}", end="", file=sys.stderr,
                      flush=True)
        train_loss = float(np.mean([float(v) for v in losses]))
        seconds = time.perf_counter() - t0
        if not args.no_progress:
            print("\r", end="", file=sys.stderr)
        row = {"epoch": epoch, "train_ppl": math.exp(train_loss),
               "valid_ppl": evaluate(side, valid), "seconds": seconds,
               "chars_per_s": chars_seen / seconds}
        history.append(row)
        sample = "".join(chars[i] for i in side.sample(start, args.sample_length))
        print(f"epoch {epoch}: train perplexity {row['train_ppl']:.2f}, validation "
              f"{row['valid_ppl']:.2f}, {seconds:.1f} s ({row['chars_per_s']:.0f} chars/s)\n"
              f"  sample: {sample!r}", flush=True)
        write_json_atomic(out / "history.json", {"args": vars(args), "corpus": source,
                                                 "history": history, "last_sample": sample})
        plot(history, out / "perplexity.png")
    print(f"wrote {out / 'history.json'} and {out / 'perplexity.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
