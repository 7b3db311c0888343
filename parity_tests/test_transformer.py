"""The Transformer block, the positional encoding and the small Transformer classifier:
scratch vs torchref vs nn.TransformerEncoderLayer vs the reference text's literal block.

The components table compares the block against the literal module (shared dropout
masks) and against nn.TransformerEncoderLayer (dropout 0) on drawn inputs; here: the
two blocks agree at test time with dropout on, central differences, the classifier's
gradients and 50 training steps in lockstep.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import scratch.attention as sa
import scratch.attention as st_
import scratch.models_attention as sma
import scratch.optim as so
import torchref.attention as ta
import torchref.attention as tt
import torchref.convert as tc
import torchref.models_attention as tma
from scratch.data import load_dataset
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

BLOCK = st_.BLOCK_PARAMS


def split(case) -> tuple[dict, int, float]:
    params = dict(zip(BLOCK, case.init[:len(BLOCK)], strict=True))
    heads, ratio = case.init[len(BLOCK):len(BLOCK) + 2]
    return params, heads, ratio


@given(case=S.transformer_block_case(np.float64, self_attention=True, nonfinite=False),
       ratio=st.sampled_from([0.1, 0.5]))
def test_blocks_agree_at_test_time_with_dropout_on(case, ratio: float,
                                                   device: torch.device) -> None:
    """At test time dropout is the identity in all three (inverted dropout): the course's
    block, nn.TransformerEncoderLayer(dropout=ratio) and the literal block, in eval mode."""
    params, heads, _ = split(case)
    x, mask = case.args
    ours = st_.TransformerBlock(params, heads, ratio).forward(x, x, x, mask, train_flg=False)
    p = tc.tensors_from_numpy(params, device)
    xt = torch.from_numpy(x).to(device)
    mt = None if mask is None else torch.from_numpy(mask).to(device)
    encoder = tc.encoder_layer_from_params(p, heads).eval()
    encoder.dropout = encoder.dropout1 = encoder.dropout2 = torch.nn.Dropout(ratio).eval()
    src_mask = None if mt is None else (~mt if mt.dim() == 2 else
                                        (~mt).repeat_interleave(heads, dim=0))
    with torch.no_grad():
        assert_close(encoder(xt, src_mask=src_mask), ours, msg="nn.TransformerEncoderLayer")
        literal = tc.reference_block_from_params(p, heads, ratio).eval()
        assert_close(literal(xt, xt, xt, mt), ours, msg="literal block")
        mirror = tt.TransformerBlock(p, heads, ratio).eval()
        assert_close(mirror(xt, xt, xt, mt), ours, msg="torchref.attention")


@settings(max_examples=max(1, settings.default.max_examples // 3))
@given(case=S.transformer_block_case(np.float64, dropout=False, conditioned=True,
                                           nonfinite=False),
       seed=S.seeds)
def test_block_backward_vs_central_differences(case, seed: int) -> None:
    """Every parameter and input gradient of the block against central differences, float64,
    on conditioned draws (layer-norm inputs with a spread, relu inputs off the kink:
    ``S.transformer_block_case``).  No dropout: a dropped row of x leaves norm2 a constant
    row (std = sqrt(eps) = 3e-3, where h = 1e-4 is not small); the dropout backward is
    compared with the literal block and the mirror, shared masks (test_components)."""
    params, heads, ratio = split(case)
    masks = case.init[len(BLOCK) + 2:]
    query, key, value, mask = case.args

    def block(p: dict) -> st_.TransformerBlock:
        b = st_.TransformerBlock(p, heads, ratio)
        b.dropout1.fixed_mask, b.dropout2.fixed_mask = masks
        return b
    ours = block(params)
    out = ours.forward(query, key, value, mask)
    assert np.abs(ours.cache[0] @ params["W1"] + params["b1"]).min() > 1e-3   # no kink
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    grads = dict(zip(("query", "key", "value"), ours.backward(dout), strict=True))
    grads.update(ours.grads())
    inputs = {"query": query, "key": key, "value": value, **params}
    for name, grad in grads.items():
        def f(w: np.ndarray, name: str = name) -> float:
            a = {**inputs, name: w}
            return float(np.sum(block({k: a[k] for k in BLOCK}).forward(
                a["query"], a["key"], a["value"], mask) * dout))
        assert_close(grad, numerical_gradient(f, inputs[name]), mode="numerical",
                     msg=f"d{name}")


def test_literal_block_parameter_gradients(device: torch.device) -> None:
    """The literal block with its own nn.Parameters (filled by torchref.convert): every
    parameter gradient, read back in the course's layout, equals the scratch block's."""
    rng = np.random.default_rng(3)
    params = {k: v + 0.1 * rng.standard_normal(v.shape)
              for k, v in st_.transformer_block_params(8, 2, seed=0).items()}
    x = rng.standard_normal((2, 5, 8))
    ours = st_.TransformerBlock(params, 2)
    out = ours.forward(x, x, x)
    dout = rng.standard_normal(out.shape)
    dx = sum(ours.backward(dout))
    literal = tc.reference_block_from_params(tc.tensors_from_numpy(params, device), 2)
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    literal(xt, xt, xt, None).backward(torch.from_numpy(dout).to(device))
    assert_close(xt.grad, dx, msg="dx")
    e = 8
    grads = {"gamma1": literal.norm1.weight.grad, "beta1": literal.norm1.bias.grad,
             "gamma2": literal.norm2.weight.grad, "beta2": literal.norm2.bias.grad,
             "W1": literal.feed_forward[0].weight.grad.T, "b1": literal.feed_forward[0].bias.grad,
             "W2": literal.feed_forward[2].weight.grad.T, "b2": literal.feed_forward[2].bias.grad,
             "Wo": literal.attention.out_proj.weight.grad.T,
             "bo": literal.attention.out_proj.bias.grad}
    for i, n in enumerate("qkv"):
        grads[f"W{n}"] = literal.attention.in_proj_weight.grad[i * e:(i + 1) * e].T
        grads[f"b{n}"] = literal.attention.in_proj_bias.grad[i * e:(i + 1) * e]
    for k, g in ours.grads().items():
        assert_close(grads[k], g, msg=f"d{k}")


def test_positional_encoding_values() -> None:
    """Row 0 is (0, 1, 0, 1, ...); column 0 is sin(t), column 1 cos(t); odd E keeps a sine."""
    pe = sa.positional_encoding(50, 7)
    assert pe.shape == (50, 7)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1, 0])
    assert_close(pe[:, 0], np.sin(np.arange(50.0)), msg="sin(t)")
    assert_close(pe[:, 1], np.cos(np.arange(50.0)), msg="cos(t)")
    assert_close(pe[:, 6], np.sin(np.arange(50.0) / 10000 ** (6 / 7)), msg="last sine")
    assert_close(ta.positional_encoding(50, 7), pe, msg="the tutorial's formula")
    assert sa.positional_encoding(3, 4, np.float32).dtype == np.float32


BLOCK_ERRORS = [
    (lambda lib, p: lib.TransformerBlock({k: v for k, v in p.items() if k != "W2"}, 2),
     "params: missing ['W2']"),
    (lambda lib, p: lib.TransformerBlock(p, 3), "num_heads: the embedding size E = 4 must be"),
    (lambda lib, p: lib.TransformerBlock({**p, "b1": p["b2"]}, 2),
     "b1: expected shape (8,) to match W1 (4, 8), got (4,)"),
    (lambda lib, p: lib.TransformerBlock({**p, "gamma2": p["b1"]}, 2),
     "gamma2: expected shape (4,) to match Wq, got (8,)"),
    (lambda lib, p: lib.TransformerBlock(p, 2, dropout=1.0),
     "dropout: expected a number in [0, 1), got 1.0"),
]


@pytest.mark.parametrize(("make", "message"), BLOCK_ERRORS)
def test_block_errors_same_on_both_sides(make, message: str) -> None:
    params = st_.transformer_block_params(4, 2, seed=0)
    errors = []
    for lib, p in ((st_, params), (tt, tc.tensors_from_numpy(params))):
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            make(lib, p)
        errors.append(str(err.value))
    assert errors[0] == errors[1]


# ---- the classifier ---------------------------------------------------------------------------

def test_classifier_gradient_vs_central_differences() -> None:
    """Backprop through embedding, block, mean-pool and Affine against central differences."""
    model = sma.TransformerClassifier(3, 4, embed_dim=4, num_heads=2, forward_expansion=1,
                                      n_classes=3, seed=1)
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((2, 1, 3, 4)), np.array([0, 2])
    grads, numeric = model.gradient(x, t), model.numerical_gradient(x, t)
    tgrads = tma.TransformerClassifier.from_scratch(model).gradient(torch.from_numpy(x),
                                                                    torch.from_numpy(t))
    for k in model.params:
        assert_close(grads[k], numeric[k], mode="numerical", msg=f"backprop vs numerical, {k}")
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


def test_classifier_round_trip_and_errors() -> None:
    model = sma.TransformerClassifier(8, 8, 16, 4, seed=0, dtype=np.float32)
    back = tma.TransformerClassifier.from_scratch(model).to_scratch()
    for k, v in model.params.items():
        assert back.params[k].dtype == np.float32
        np.testing.assert_array_equal(back.params[k], v)
    for lib in (sma, tma):
        with pytest.raises(ValueError, match="num_heads: the embedding size E = 6"):
            lib.TransformerClassifier(8, 8, embed_dim=6, num_heads=4)
        with pytest.raises(ValueError, match="seq_len: expected a positive integer, got 0"):
            lib.TransformerClassifier(0, 8)
    with pytest.raises(ValueError, match=re.escape("x: expected shape (N, 8, 8) or (N, 1, 8, 8),"
                                                   " got (2, 64)")):
        model.predict(np.ones((2, 64), np.float32))


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_classifier_50_steps_in_lockstep(dropout: float, one_thread) -> None:
    """The digits as 8 rows of 8 pixels: 50 SGD steps of scratch and torch from the same
    weights (torchref.convert), on the same batches and, with dropout, the same fresh keep-masks
    each step; every step's loss and the final weights agree within the float64 policy."""
    (x, t), _ = load_dataset("digits", dtype=np.float64)
    model = sma.TransformerClassifier(8, 8, embed_dim=16, num_heads=4, forward_expansion=2,
                                      dropout=dropout, seed=0)
    tmodel = tma.TransformerClassifier.from_scratch(model)
    opt, topt = so.SGD(lr=0.1), torch.optim.SGD(tmodel.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for step in range(50):
        idx = rng.choice(len(x), 32, replace=False)
        xb, tb = x[idx], t[idx]
        if dropout:
            keep = [rng.random((32, 8, 16)) >= dropout for _ in range(2)]
            for ours, theirs, m in zip((model.block.dropout1, model.block.dropout2),
                                       (tmodel.block.dropout1, tmodel.block.dropout2), keep,
                                       strict=True):
                ours.fixed_mask, theirs.fixed_mask = m, torch.from_numpy(m)
        opt.update(model.params, model.gradient(xb, tb))
        topt.zero_grad()
        loss_t = tmodel.loss(torch.from_numpy(xb), torch.from_numpy(tb), train_flg=True)
        loss_t.backward()
        topt.step()
        assert_close(loss_t, model.last_layer.loss, msg=f"loss at step {step}")
    for k, v in model.params.items():
        assert_close(tmodel.params[k], v, msg=f"{k} after 50 SGD steps")
    first = float(model.loss(x[:200], t[:200]))
    assert first < 2.0                       # it learns: log(10) = 2.30 at chance
