"""scratch.optim vs torchref.optim vs torch.optim."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.optim as so
import torchref.optim as to
from parity_tests import strategies as S
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
