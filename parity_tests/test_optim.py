"""scratch.optim vs torchref.optim vs torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
import torchref.optim as to
from parity_tests.model_checks import assert_same_params, steps_in_lockstep
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


@given(dtype=S.dtypes, data=st.data(), lr=st.floats(1e-4, 1.0), steps=st.integers(1, 5))
def test_sgd_update(dtype: type, data: st.DataObject, lr: float, steps: int,
                    device: torch.device) -> None:
    shapes = {"W1": (3, 2), "b1": (2,)}
    params = {k: data.draw(S.arrays(dtype, s)) for k, s in shapes.items()}
    grads = [{k: data.draw(S.arrays(dtype, s)) for k, s in shapes.items()} for _ in range(steps)]
    tparams = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in params.items()}
    native = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in params.items()}
    opt, topt = so.SGD(lr), to.SGD(lr)
    nopt = torch.optim.SGD(list(native.values()), lr=lr)
    for g in grads:
        opt.update(params, g)
        topt.update(tparams, {k: torch.from_numpy(v).to(device) for k, v in g.items()})
        for k, p in native.items():
            p.grad = torch.from_numpy(g[k]).to(device)
        nopt.step()
    for k in params:
        assert_close(tparams[k], params[k], msg=f"torchref SGD {k}")
        assert_close(native[k], params[k], msg=f"torch.optim.SGD {k}")


def test_sgd_updates_in_place() -> None:
    W = np.ones((2, 2))
    so.SGD(0.5).update({"W": W}, {"W": np.ones((2, 2))})
    np.testing.assert_array_equal(W, 0.5 * np.ones((2, 2)))


# --- the course's other optimizers -------------------------------------------------------

# Where each torch optimizer keeps the state that the course keeps, and how they relate.
STATE_PINS = {
    "momentum": [("v", "momentum_buffer", "-lr")],
    "nesterov": [("v", "momentum_buffer", "-lr")],
    "adagrad": [("h", "sum", "1")],
    "rmsprop": [("h", "square_avg", "1")],
    "adam": [("m", "exp_avg", "1"), ("v", "exp_avg_sq", "1")],
}


@pytest.mark.parametrize("name", S.OPTIMIZER_NAMES)
@given(dtype=S.dtypes, data=st.data(), steps=st.integers(1, 6))
def test_optimizer_update(name: str, dtype: type, data: st.DataObject, steps: int,
                          device: torch.device) -> None:
    """scratch.optim.X and torchref.optim.X (torch.optim configured to the course's formula):
    the same parameters after each step, and the same state (torch's momentum buffer is
    the course's velocity divided by -lr).

    float32 draws RMSprop's decay_rate and Adam's beta2 from [0.5, 1): near 0 the second
    moment v forgets its history, a zero gradient after a non-zero one leaves v = 0 and
    the step is ``lr m / eps``, which multiplies m's rounding by lr/eps = 2.5e6 (torch
    updates m by ``lerp``, whose ``1 - (1 - beta1)`` rounds differently from the course's
    ``beta1 m``; hypothesis found beta1 = 1e-6, beta2 = 0: 1.2% apart).  torchref.tolerance,
    "adaptive optimizers", documents the lr/eps amplification."""
    min_decay = 0.5 if dtype == np.float32 else 0.0
    kwargs = data.draw(S.optimizer_kwargs(name, min_decay=min_decay))
    shapes = {"W1": (3, 2), "b1": (2,)}
    params = {k: data.draw(S.arrays(dtype, s)) for k, s in shapes.items()}
    tparams = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in params.items()}
    opt, topt = so.OPTIMIZERS[name](**kwargs), to.OPTIMIZERS[name](**kwargs)
    for step in range(steps):
        g = {k: data.draw(S.arrays(dtype, s)) for k, s in shapes.items()}
        opt.update(params, g)
        topt.update(tparams, {k: torch.from_numpy(v).to(device) for k, v in g.items()})
        for k in params:
            assert_close(tparams[k], params[k], msg=f"{name} {k} after step {step + 1}")
    for ours, theirs, factor in STATE_PINS.get(name, []):
        for k, p in tparams.items():
            if factor == "-lr" and kwargs["momentum"] == 0:   # torch keeps no buffer then
                assert theirs not in topt.optimizer.state[p]
                continue
            state = topt.optimizer.state[p][theirs]
            scale = -kwargs["lr"] if factor == "-lr" else 1.0
            assert_close(state * scale, getattr(opt, ours)[k], msg=f"{name} state {ours}[{k}]")


@given(dtype=S.dtypes, data=st.data(), steps=st.integers(1, 6), eps=st.floats(1e-8, 1e-2))
def test_native_adam_is_the_course_adam_with_eps_scaled(dtype: type, data: st.DataObject,
                                                        steps: int, eps: float,
                                                        device: torch.device) -> None:
    """Plain torch.optim.Adam(eps=e) = the course's Adam with eps = e * sqrt(1 - beta2^t)."""
    kwargs = data.draw(S.optimizer_kwargs("adam"))
    shape = (4, 3)
    p = data.draw(S.arrays(dtype, shape))
    pt = torch.tensor(p, device=device, requires_grad=True)
    native = torch.optim.Adam([pt], lr=kwargs["lr"], betas=(kwargs["beta1"], kwargs["beta2"]),
                              eps=eps)
    ours = so.Adam(**kwargs)
    for t in range(1, steps + 1):
        g = data.draw(S.arrays(dtype, shape))
        ours.eps = eps * (1 - kwargs["beta2"] ** t) ** 0.5
        ours.update({"p": p}, {"p": g})
        pt.grad = torch.from_numpy(g).to(device)
        native.step()
        assert_close(pt, p, msg=f"step {t}")


def test_adam_eps_placement_closed_form() -> None:
    """One step from 0 on g = 1e-6 (so m-hat = g, v-hat = g^2), eps = 1e-7:
    torch moves lr * g / (|g| + eps), the course lr * g / (|g| + eps / sqrt(1 - beta2))."""
    lr, g, eps, beta2 = 0.001, 1e-6, 1e-7, 0.999
    ours = {"p": np.zeros(1)}
    so.Adam(lr, eps=eps).update(ours, {"p": np.array([g])})
    pt = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    native = torch.optim.Adam([pt], lr=lr, eps=eps)
    pt.grad = torch.tensor([g], dtype=torch.float64)
    native.step()
    assert_close(pt, np.array([-lr * g / (g + eps)]), msg="torch: eps added to sqrt(v-hat)")
    assert_close(ours["p"], np.array([-lr * g / (g + eps / np.sqrt(1 - beta2))]),
                 msg="course: eps added to sqrt(v), before the bias correction")
    mirror = {"p": torch.zeros(1, dtype=torch.float64, requires_grad=True)}
    to.Adam(lr, eps=eps).update(mirror, {"p": torch.tensor([g], dtype=torch.float64)})
    assert_close(mirror["p"], ours["p"], msg="torchref.optim.Adam follows the course")


def test_course_defaults_and_registry() -> None:
    expected = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9},
                "nesterov": {"lr": 0.01, "momentum": 0.9}, "adagrad": {"lr": 0.01, "eps": 1e-7},
                "rmsprop": {"lr": 0.01, "decay_rate": 0.99, "eps": 1e-7},
                "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7}}
    assert list(so.OPTIMIZERS) == list(to.OPTIMIZERS) == list(expected)
    for name, values in expected.items():
        for side in (so.OPTIMIZERS[name](), to.OPTIMIZERS[name]()):
            assert {k: getattr(side, k) for k in values} == values, (name, type(side))


@pytest.mark.parametrize(("name", "kwargs", "pattern"), [
    ("momentum", {"momentum": 1.0}, r"momentum: expected a number in \[0, 1\), got 1.0"),
    ("nesterov", {"momentum": -0.1}, r"momentum: expected a number in \[0, 1\)"),
    ("adagrad", {"eps": 0.0}, r"eps: expected a positive finite number, got 0.0"),
    ("rmsprop", {"decay_rate": 1.5}, r"decay_rate: expected a number in \[0, 1\)"),
    ("adam", {"beta2": 1.0}, r"beta2: expected a number in \[0, 1\)"),
    ("adam", {"lr": -1.0}, r"lr: expected a positive finite number"),
])
def test_optimizer_errors(name: str, kwargs: dict, pattern: str) -> None:
    for registry in (so.OPTIMIZERS, to.OPTIMIZERS):
        with pytest.raises(ValueError, match=pattern):
            registry[name](**kwargs)
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected shape \(2,\)"):
        so.OPTIMIZERS[name]().update({"W": np.ones(2)}, {"W": np.ones(3)})


# AdaGrad, RMSprop and Adam divide each gradient entry by its own running size plus eps, so
# an entry that is 0 up to rounding (delta) moves by lr * delta / (|delta| + eps): rounding is
# amplified by up to lr / eps per step (3e5 for lr = 0.03 and the course's eps = 1e-7), then
# compounded by the training dynamics; measured 1e-8 after 50 float64 steps.  That is the
# optimizers' scale invariance, not a difference between the sides: the few-step tests above
# pin the formulas with eps = 1e-7; here the adaptive ones run in float64, with eps >= 1e-3
# and a second moment that remembers (beta2, decay_rate >= 0.9; see S.optimizer_kwargs).
ADAPTIVE = ("adagrad", "rmsprop", "adam")


@pytest.mark.parametrize("name", S.OPTIMIZER_NAMES)
@S.long_run
@given(data=st.data(), decay=st.booleans())
def test_fifty_steps_on_the_mlp(name: str, data: st.DataObject, decay: bool,
                                device: torch.device) -> None:
    """50 steps: scratch MLP (L2 term in its loss) + scratch.optim vs torch MLP (no L2 term)
    + torch.optim with ``weight_decay`` on the weights: the same parameters at the end."""
    dtype = np.float64 if name in ADAPTIVE else None
    sizes, x, t, seed = data.draw(S.mlp_case(dtype, max_width=6, max_n=6))
    kwargs = data.draw(S.optimizer_kwargs(name, max_lr=0.1, min_decay=0.9, min_eps=1e-3))
    lam = data.draw(st.floats(1e-4, 0.1)) if decay else 0.0
    model = sm.MLP(sizes, seed=seed, dtype=x.dtype, weight_decay_lambda=lam)
    tmodel = tm.MLP.from_scratch(model, device=device)
    tmodel.weight_decay_lambda = 0.0          # the decay comes from torch.optim instead
    opt = so.OPTIMIZERS[name](**kwargs)
    topt = to.OPTIMIZERS[name](**kwargs).torch_optimizer(tmodel.param_groups(lam))
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    steps_in_lockstep(model, tmodel, opt, topt, (x, t, xt, tt), 50)
    assert_same_params(model, tmodel, f"after 50 {name} steps")
