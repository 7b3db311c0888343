"""Training throughput (images/s) of a torch CNN on CPU or CUDA: AMP, channels_last, torch.compile.

Times full training steps (forward, cross-entropy, backward, SGD update) of a
``torchref.models`` network on random 1x28x28 images, for every combination of
the options asked for, and prints one row per combination: the median over
``--repeats`` blocks of ``--steps`` steps, after ``--warmup`` untimed steps
(which include torch.compile's compilation).  CUDA work is synchronised before
each clock reading.  AMP autocasts to float16 on CUDA (with a GradScaler) and to
bfloat16 on the CPU; the parameters stay float32.

    python scripts/gpu_throughput.py --device cuda --json gpu.json
    python scripts/gpu_throughput.py --device cpu --quick --compile off
    python scripts/gpu_throughput.py --model deepcnn --amp on --channels-last both

``--model auto`` takes the reference text's ``CNN`` when this checkout has it,
else ``SimpleConvNet`` (the course's one-convolution network), and says which.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from scratch._atomic import write_text_atomic
from torchref.device import DEVICE_CHOICES, resolve_device, set_threads

# --model name -> (torchref.models attribute, how to build it)
MODELS: dict[str, tuple[str, Callable[[type], nn.Module]]] = {
    "simplecnn": ("SimpleConvNet", lambda cls: cls(input_dim=(1, 28, 28), weight_init_std="he",
                                                   seed=0, dtype=torch.float32)),
    "cnn": ("CNN", lambda cls: cls()),
    "deepcnn": ("DeepConvNet", lambda cls: cls()),
}
SWITCH = {"off": (False,), "on": (True,), "both": (False, True)}


def build_model(name: str) -> tuple[str, nn.Module]:
    """(resolved name, float32 model) for ``--model``; ValueError naming what is missing."""
    import torchref.models as tm

    if name == "auto":
        name = "cnn" if hasattr(tm, MODELS["cnn"][0]) else "simplecnn"
    if name not in MODELS:
        raise ValueError(f"model: expected one of auto, {', '.join(MODELS)}, got {name!r}")
    attr, make = MODELS[name]
    if not hasattr(tm, attr):
        raise ValueError(f"model: {name!r} needs torchref.models.{attr}, which this checkout "
                         f"does not have yet; use --model simplecnn or --model auto")
    return name, make(getattr(tm, attr)).float()


def step_fn(model: nn.Module, device: torch.device, amp: bool, channels_last: bool,
            compile_: bool, batch: int) -> Callable[[], None]:
    """One training step on a fixed random batch, with the options applied."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 1, 28, 28), generator=gen).to(device)
    t = torch.randint(0, 10, (batch,), generator=gen).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt).train()
    x = x.contiguous(memory_format=fmt)
    run = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp and cuda)
    amp_dtype = torch.float16 if cuda else torch.bfloat16

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, dtype=amp_dtype) if amp else nullcontext()
        with ctx:
            loss = F.cross_entropy(run(x), t)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def measure(step: Callable[[], None], device: torch.device, batch: int, steps: int,
            repeats: int, warmup: int) -> tuple[float, float]:
    """(median images/s over the timed blocks, seconds of the warm-up)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm_s = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(batch * steps / (time.perf_counter() - t0))
    return statistics.median(rates), warm_s


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, " \
               f"CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), " \
           f"torch {torch.__version__}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where to train (default: %(default)s, CUDA when present)")
    p.add_argument("--model", default="auto", choices=["auto", *MODELS],
                   help="network (default: %(default)s: cnn if present, else simplecnn)")
    for flag, what in (("amp", "automatic mixed precision"), ("channels-last",
                       "channels_last memory format"), ("compile", "torch.compile")):
        p.add_argument(f"--{flag}", default="both", choices=list(SWITCH),
                       help=f"{what}: off, on, or both (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, help="(default: %(default)s)")
    p.add_argument("--steps", type=int, default=20,
                   help="steps per timed block (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed blocks, the median is reported (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed steps first, compilation included (default: %(default)s)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="CPU threads for torch, 0 = leave torch's setting (default: all "
                        "cores, %(default)s here)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: batch 8, 2 steps, 1 repeat, 1 warm-up step")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON (default: no)")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_size, args.steps, args.repeats, args.warmup = 8, 2, 1, 1
    for name, low in (("batch_size", 1), ("steps", 1), ("repeats", 1), ("warmup", 0),
                      ("threads", 0)):
        if getattr(args, name) < low:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= {low}, "
                    f"got {getattr(args, name)}")
    try:
        args.device = resolve_device(args.device)
    except ValueError as exc:
        p.error(f"--{exc}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    try:
        model_name, _ = build_model(args.model)
    except ValueError as exc:
        sys.exit(f"gpu_throughput.py: error: --{exc}")
    if args.model == "auto":
        print(f"# --model auto: {model_name}", flush=True)
    combos = list(itertools.product(SWITCH[args.amp], SWITCH[args.channels_last],
                                    SWITCH[args.compile]))
    print(f"# {describe(args.device)}; model {model_name}, batch {args.batch_size}, "
          f"median of {args.repeats} x {args.steps} steps", flush=True)
    rows = []
    for i, (amp, cl, comp) in enumerate(combos, 1):
        label = f"amp {'on' if amp else 'off'}, channels_last {'on' if cl else 'off'}, " \
                f"compile {'on' if comp else 'off'}"
        print(f"[{i}/{len(combos)}] {label} ...", end=" ", flush=True)
        row = {"model": model_name, "amp": amp, "channels_last": cl, "compile": comp}
        try:
            _, model = build_model(model_name)          # a fresh model per combination
            step = step_fn(model, args.device, amp, cl, comp, args.batch_size)
            rate, warm_s = measure(step, args.device, args.batch_size, args.steps,
                                   args.repeats, args.warmup)
            row.update(images_per_s=rate, warmup_s=warm_s)
            print(f"{rate:,.0f} images/s (warm-up {warm_s:.1f} s)", flush=True)
        except Exception as exc:      # e.g. torch.compile without a working compiler
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"failed: {row['error']}", flush=True)
        rows.append(row)
    doc = {"device": describe(args.device), "batch_size": args.batch_size,
           "steps": args.steps, "repeats": args.repeats, "warmup": args.warmup, "rows": rows}
    if args.json:
        write_text_atomic(args.json, json.dumps(doc, indent=2))
        print(f"wrote {args.json}")
    return doc


if __name__ == "__main__":
    sys.exit(1 if any("error" in row for row in main()["rows"]) else 0)
