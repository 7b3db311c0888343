"""Mirror of ``scratch.time_layers``: ``F.linear`` over the last axis, ``F.cross_entropy``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scratch._seq_checks import check_time_targets, time_affine_input
from torchref.functions import check_input_dtype
from torchref.layers import Affine


class TimeAffine(Affine):
    """``ys = xs W + b`` at every step (``nn.Linear`` on the last axis; W stored (in, out))."""

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        time_affine_input(tuple(xs.shape), self.in_features)
        check_input_dtype(xs, self.weight, "xs")
        return F.linear(xs, self.weight, self.bias)


class TimeSoftmaxWithLoss(nn.Module):
    """``F.cross_entropy`` over every step of xs (N, T, C), ts (N, T), ``ignore_index`` skipped."""

    def __init__(self, ignore_index: int = -100) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)

    def forward(self, xs: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        ts_np = np.asarray(ts.detach().cpu()) if isinstance(ts, torch.Tensor) else np.asarray(ts)
        check_time_targets(tuple(xs.shape), ts_np, self.ignore_index)
        ts = torch.as_tensor(ts, device=xs.device).long()
        return F.cross_entropy(xs.reshape(-1, xs.shape[-1]), ts.reshape(-1),
                               ignore_index=self.ignore_index)
