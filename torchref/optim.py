"""Mirror of ``scratch.optim``: the course's ``update(params, grads)`` on ``torch.optim``.

``SGD(lr).update(params, grads)`` hands the tensors in ``params`` (updated in
place) and their gradients to a ``torch.optim.SGD`` and takes one step.  For
an ``nn.Module`` use ``torch.optim.SGD(model.parameters(), lr)`` directly.
"""

from __future__ import annotations

import torch

from scratch._checks import check_positive


class SGD:
    """``W <- W - lr * dL/dW``, performed by ``torch.optim.SGD``."""

    optimizer_class = torch.optim.SGD

    def __init__(self, lr: float = 0.01) -> None:
        check_positive("lr", lr)
        self.lr = lr
        self.optimizer: torch.optim.Optimizer | None = None
        self.keys: list[str] = []

    def optimizer_kwargs(self) -> dict:
        return {"lr": self.lr}

    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(params) - set(grads))
        if missing:
            raise ValueError(f"grads: missing entries for parameters {missing}")
        if self.optimizer is None or self.keys != list(params):
            self.keys = list(params)
            self.optimizer = self.optimizer_class(list(params.values()), **self.optimizer_kwargs())
        for key, p in params.items():
            if grads[key].shape != p.shape:
                raise ValueError(f"grads[{key!r}]: expected shape {tuple(p.shape)}, "
                                 f"got {tuple(grads[key].shape)}")
            p.grad = grads[key].detach().to(p.dtype)
        with torch.no_grad():
            self.optimizer.step()


# name -> class, for command-line choices (scripts/train.py --optimizer).
OPTIMIZERS: dict[str, type] = {"sgd": SGD}
