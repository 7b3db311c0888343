"""Mirror of ``scratch.batchnorm`` on ``torch.nn.functional.batch_norm``.

Same arguments as the scratch layer; ``gamma``/``beta`` are parameters and
the running statistics buffers.  The course's ``momentum`` (weight of the old
value) is passed to torch as ``1 - momentum`` (weight of the new value).

``F.batch_norm`` updates running_var with the *unbiased* batch variance.  With
``unbiased_running_var=True`` this layer lets it do so; with the course's
default (False) it normalises with ``F.batch_norm`` on the batch statistics
and updates the running averages with the biased variance itself
(``Tensor.lerp_``: ``r + (1 - momentum) (new - r)``).  The parity test pins
``F.batch_norm``'s running_var against the course's exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import check_batch, check_ndim, check_positive, check_rate, check_same_shape


class BatchNormalization(nn.Module):
    """Batch normalization over the batch axis; x (N, D) or (N, ...) flattened to (N, D)."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor, momentum: float = 0.9,
                 running_mean: torch.Tensor | None = None,
                 running_var: torch.Tensor | None = None, eps: float = 1e-6,
                 unbiased_running_var: bool = False) -> None:
        super().__init__()
        gamma, beta = torch.as_tensor(gamma), torch.as_tensor(beta)
        check_ndim("gamma", tuple(gamma.shape), (1,))
        check_same_shape("gamma", tuple(gamma.shape), "beta", tuple(beta.shape))
        self.momentum, self.eps = check_rate("momentum", momentum), check_positive("eps", eps)
        self.unbiased_running_var = unbiased_running_var
        self.gamma = nn.Parameter(gamma.detach().clone())
        self.beta = nn.Parameter(beta.detach().clone().to(gamma))

        def buffer(value: torch.Tensor | None) -> torch.Tensor:
            if value is None:
                return torch.zeros_like(self.gamma, requires_grad=False)
            return torch.as_tensor(value).detach().clone().to(self.gamma)
        self.register_buffer("running_mean", buffer(running_mean))
        self.register_buffer("running_var", buffer(running_var))

    @property
    def dgamma(self) -> torch.Tensor | None:
        return self.gamma.grad

    @property
    def dbeta(self) -> torch.Tensor | None:
        return self.beta.grad

    def forward(self, x: torch.Tensor, train_flg: bool | None = None) -> torch.Tensor:
        """``train_flg`` overrides the module's mode (``self.training``) when given."""
        training = self.training if train_flg is None else train_flg
        check_batch("x", tuple(x.shape))
        d = self.gamma.shape[0]
        if x.dim() < 2 or x[0].numel() != d:
            raise ValueError(f"x: expected shape (N, {d}) (or (N, ...) with {d} features "
                             f"per sample) to match gamma, got {tuple(x.shape)}")
        if training and x.shape[0] < 2:
            raise ValueError(f"x: batch normalization in training needs at least 2 samples, "
                             f"got shape {tuple(x.shape)}")
        x2 = x.flatten(1)
        if not training:
            out = F.batch_norm(x2, self.running_mean, self.running_var, self.gamma, self.beta,
                               training=False, eps=self.eps)
        elif self.unbiased_running_var:
            out = F.batch_norm(x2, self.running_mean, self.running_var, self.gamma, self.beta,
                               training=True, momentum=1.0 - self.momentum, eps=self.eps)
        else:
            out = F.batch_norm(x2, None, None, self.gamma, self.beta, training=True,
                               eps=self.eps)
            with torch.no_grad():
                self.running_mean.lerp_(x2.mean(dim=0), 1.0 - self.momentum)
                self.running_var.lerp_(x2.var(dim=0, unbiased=False), 1.0 - self.momentum)
        return out.reshape(x.shape)


@contextlib.contextmanager
def running_stats_kept(layers: Iterable[BatchNormalization]) -> Iterator[None]:
    """Put the layers' running statistics back on exit (see ``scratch.batchnorm``)."""
    saved = [(layer, layer.running_mean.clone(), layer.running_var.clone()) for layer in layers]
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, mean, var in saved:
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(var)
