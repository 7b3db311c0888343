"""The benchmark cases of ``scripts/bench.py``: scratch and torch doing the same work.

A ``Case`` holds two zero-argument callables (the scratch side and the torch side);
``GROUPS`` maps a group name to a function that builds its cases.  Add a group by
writing such a function and listing it in ``GROUPS`` (mark a case ``slow=True`` when
``bench.py --quick`` should leave it out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Case:
    """One comparison: two zero-argument callables doing the same work."""

    group: str
    name: str
    dtype: str
    scratch: Callable[[], object]
    torch: Callable[[], object]
    slow: bool = False            # left out by --quick


def layer_case(group: str, name: str, layer, tlayer: torch.nn.Module, x: np.ndarray,
               dout: np.ndarray, inputs: int = 1, slow: bool = False) -> Case:
    """Forward + backward of one layer: scratch ``layer.forward(x, ...)`` then
    ``backward(dout)``; torch ``tlayer(xt, ...)`` then ``.backward(dout)`` with ``xt``
    requiring grad (dx, dW, db on both sides).  ``inputs``: how many times x is passed
    (3 for self-attention's query, key, value)."""
    xt, doutt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dout)

    def scratch_side() -> None:
        layer.forward(*(x,) * inputs)
        layer.backward(dout)

    def torch_side() -> None:
        tlayer.zero_grad(set_to_none=True)
        xt.grad = None
        tlayer(*(xt,) * inputs).backward(doutt)

    return Case(group, name, x.dtype.name, scratch_side, torch_side, slow=slow)



def train_step_case(group: str, name: str, model, x: np.ndarray, t: np.ndarray) -> Case:
    """One training step (forward, backward, SGD lr 0.01) of a scratch model and its torch twin.

    The twin starts from the same weights (``from_scratch``); neither side computes dx
    for the input images.
    """
    import scratch.optim as so
    import torchref.models as tm

    tmodel = getattr(tm, type(model).__name__).from_scratch(model)
    opt, topt = so.SGD(0.01), torch.optim.SGD(tmodel.parameters(), lr=0.01)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def scratch_step() -> None:
        opt.update(model.params, model.gradient(x, t))

    def torch_step() -> None:
        topt.zero_grad(set_to_none=True)
        tmodel.loss(xt, tt).backward()
        topt.step()

    return Case(group, name, x.dtype.name, scratch_step, torch_step)


def mlp_cases(batch: int = 100) -> list[Case]:
    """One training step (forward, backward, SGD update) of the 784-100-10 MLP."""
    import scratch.models as sm

    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        x = rng.random((batch, 784)).astype(dtype)
        t = rng.integers(0, 10, batch)
        cases.append(train_step_case("mlp", f"train step 784-100-10, batch {batch}",
                                     sm.MLP([784, 100, 10], seed=0, dtype=dtype), x, t))
    return cases


def cnn_cases(batch: int = 100) -> list[Case]:
    """Convolution layer fwd+bwd (with dx), max pooling fwd+bwd, SimpleConvNet train step.

    28x28 single-channel images, 30 5x5 filters (the course's MNIST setting).
    """
    import scratch.conv as sc
    import scratch.models as sm
    import torchref.conv as tc

    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        x = rng.random((batch, 1, 28, 28)).astype(dtype)
        t = rng.integers(0, 10, batch)
        W = (0.1 * rng.standard_normal((30, 1, 5, 5))).astype(dtype)
        b = np.zeros(30, dtype=dtype)
        dout = rng.standard_normal((batch, 30, 24, 24)).astype(dtype)
        cases.append(layer_case("cnn", f"conv 30x5x5 fwd+bwd (dx too), {batch}x1x28x28",
                                sc.Convolution(W, b),
                                tc.Convolution(torch.from_numpy(W), torch.from_numpy(b)),
                                x, dout))

        feat = rng.standard_normal((batch, 30, 24, 24)).astype(dtype)
        dpool = rng.standard_normal((batch, 30, 12, 12)).astype(dtype)
        cases.append(layer_case("cnn", f"max pool 2x2 fwd+bwd, {batch}x30x24x24",
                                sc.Pooling(2, 2), tc.Pooling(2, 2), feat, dpool))

        cases.append(train_step_case("cnn", f"SimpleConvNet train step, batch {batch}",
                                     sm.SimpleConvNet(seed=0, weight_init_std="he", dtype=dtype),
                                     x, t))
    return cases


# (label, x shape (N, C, H, W), W shape (FN, C, FH, FW), pad, slow): issue 13's shapes.
CONV_SHAPES = [
    ("N100 C1 28x28, 30 5x5, pad 0", (100, 1, 28, 28), (30, 1, 5, 5), 0, False),
    ("N100 C16 14x14, 32 3x3, pad 1", (100, 16, 14, 14), (32, 16, 3, 3), 1, False),
    ("N256 C3 32x32, 64 3x3, pad 1", (256, 3, 32, 32), (64, 3, 3, 3), 1, True),
    ("N32 C64 56x56, 64 3x3, pad 1", (32, 64, 56, 56), (64, 64, 3, 3), 1, True),
]


def conv_cases() -> list[Case]:
    """Convolution layer fwd+bwd (dx, dW, db on both sides) for the shapes in CONV_SHAPES."""
    import scratch.conv as sc
    import torchref.conv as tc

    cases = []
    for dtype in (np.float32, np.float64):
        for label, x_shape, w_shape, pad, slow in CONV_SHAPES:
            rng = np.random.default_rng(0)
            x = rng.standard_normal(x_shape).astype(dtype)
            W = (0.1 * rng.standard_normal(w_shape)).astype(dtype)
            b = np.zeros(w_shape[0], dtype=dtype)
            conv = sc.Convolution(W, b, pad=pad)
            dout = rng.standard_normal(conv.forward(x).shape).astype(dtype)
            tconv = tc.Convolution(torch.from_numpy(W), torch.from_numpy(b), pad=pad)
            cases.append(layer_case("conv", f"conv fwd+bwd {label}", conv, tconv, x, dout,
                                    slow=slow))
    return cases


def deepcnn_cases(batch: int = 100) -> list[Case]:
    """DeepConvNet training step (SGD), 1x28x28 images: skipped until the models exist."""
    import scratch.models as sm
    import torchref.models as tm

    missing = [f"{m.__name__}.DeepConvNet" for m in (sm, tm) if not hasattr(m, "DeepConvNet")]
    if missing:
        print(f"# skipped group deepcnn: {' and '.join(missing)} not found in this checkout",
              flush=True)
        return []
    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        x = rng.random((batch, 1, 28, 28)).astype(dtype)
        t = rng.integers(0, 10, batch)
        cases.append(train_step_case("deepcnn", f"DeepConvNet train step, batch {batch}",
                                     sm.DeepConvNet(seed=0, dtype=dtype), x, t))
    return cases


def _gradcheck_models() -> list[tuple[str, object, np.ndarray, np.ndarray, Callable]]:
    """(label, float64 scratch model, x, t, torch twin maker) for the gradcheck group."""
    import scratch.models as sm
    import torchref.models as tm

    rng = np.random.default_rng(0)
    out = [("MLP 64-16-10, batch 8", sm.MLP([64, 16, 10], "sigmoid", seed=0),
            rng.standard_normal((8, 64)), rng.integers(0, 10, 8), tm.MLP.from_scratch)]
    conv = {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}
    model = sm.SimpleConvNet((1, 8, 8), conv, hidden_size=16, output_size=10,
                             weight_init_std=0.3, seed=0)
    out.append(("SimpleConvNet 1x8x8 (4 3x3 filters)-16-10, batch 4", model,
                rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 10, 4),
                tm.SimpleConvNet.from_scratch))
    return out


def gradcheck_cases() -> list[Case]:
    """Full vs fast gradient check of a model's backprop, and how many forward passes each needs.

    scratch: ``scratch.gradient.gradcheck`` of the model's hand-written backprop;
    torch: ``torch.autograd.gradcheck`` of autograd on the torch twin (same
    float64 weights and batch, every parameter an input).  The case name
    carries the forward passes each side made (counted, not estimated).
    """
    from torch.func import functional_call

    from scratch.gradient import gradcheck

    cases = []
    for label, model, x, t, twin in _gradcheck_models():
        tmodel = twin(model)
        names = [n for n, _ in tmodel.named_parameters()]
        leaves = tuple(p.detach().clone().requires_grad_(True) for p in tmodel.parameters())
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        calls = [0]

        def loss(*params, tmodel=tmodel, names=names, xt=xt, tt=tt, calls=calls):
            calls[0] += 1
            logits = functional_call(tmodel, dict(zip(names, params, strict=True)), (xt,))
            return tmodel.last_layer(logits, tt)

        n_params = sum(v.size for v in model.params.values())
        for fast in (False, True):
            ours = gradcheck(model, (x, t), fast=fast, seed=0)
            ours.raise_if_failed()
            calls[0] = 0
            assert torch.autograd.gradcheck(loss, leaves, fast_mode=fast)
            mode = "fast" if fast else "full"
            cases.append(Case(
                "gradcheck", f"{mode} {label} ({n_params} weights): forward passes "
                f"ours {ours.n_evals}, torch.autograd.gradcheck {calls[0]}", "float64",
                lambda model=model, x=x, t=t, fast=fast: gradcheck(model, (x, t), fast=fast,
                                                                     seed=0),
                lambda loss=loss, leaves=leaves, fast=fast: torch.autograd.gradcheck(
                    loss, leaves, fast_mode=fast), slow=not fast))
    return cases


def rnn_cases(N: int = 32, T: int = 50, D: int = 128, H: int = 128) -> list[Case]:
    """TimeLSTM forward + backward (dxs, dWx, dWh, db, dh0, dc0 on both sides) vs nn.LSTM."""
    import scratch.rnn as sr
    import torchref.rnn as tr

    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        k = 1 / np.sqrt(H)
        Wx, Wh = (rng.uniform(-k, k, s).astype(dtype) for s in ((D, 4 * H), (H, 4 * H)))
        b = rng.uniform(-k, k, 4 * H).astype(dtype)
        xs = rng.standard_normal((N, T, D)).astype(dtype)
        dhs = rng.standard_normal((N, T, H)).astype(dtype)
        cases.append(layer_case("rnn", f"TimeLSTM fwd+bwd N={N} T={T} D={D} H={H}",
                                sr.TimeLSTM(Wx, Wh, b),
                                tr.TimeLSTM(*(torch.from_numpy(a) for a in (Wx, Wh, b))),
                                xs, dhs))
    return cases


def attention_cases(n: int = 32, t: int = 64, e: int = 128, heads: int = 8) -> list[Case]:
    """MultiHeadAttention forward+backward (self-attention: dx and every dW, db): the scratch
    layer vs its mirror on ``nn.MultiheadAttention``, the same weights."""
    import scratch.attention as sa
    import torchref.attention as ta

    cases = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        w = [(rng.standard_normal((e, e)) / np.sqrt(e)).astype(dtype) for _ in range(4)]
        b = [np.zeros(e, dtype=dtype) for _ in range(4)]
        x, dout = (rng.standard_normal((n, t, e)).astype(dtype) for _ in range(2))
        cases.append(layer_case("attention",
                                f"MultiHeadAttention fwd+bwd {n}x{t}x{e}, {heads} heads",
                                sa.MultiHeadAttention(*w, *b, heads),
                                ta.MultiHeadAttention(*(torch.from_numpy(a) for a in w + b),
                                                      heads),
                                x, dout, inputs=3))
    return cases


GROUPS: dict[str, Callable[[], list[Case]]] = {"mlp": mlp_cases, "cnn": cnn_cases,
                                               "conv": conv_cases, "deepcnn": deepcnn_cases,
                                               "gradcheck": gradcheck_cases}
GROUPS["rnn"] = rnn_cases
GROUPS["attention"] = attention_cases
