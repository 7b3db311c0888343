"""Mirror of ``scratch.losses`` on ``torch.nn.functional`` (same conventions).

Integer labels go to ``F.nll_loss`` / ``F.cross_entropy`` directly; one-hot or
probability rows use the targets-as-probabilities form.  Both are means over
the batch, as on the scratch side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scratch._checks import check_batch, check_distribution, check_same_shape, check_targets
from torchref.functions import as_float_tensor


def check_target_tensor(y: torch.Tensor, t: torch.Tensor, y_name: str = "y",
                        t_name: str = "t") -> bool:
    """Validate t against scores y (same rules and messages as scratch); True for labels."""
    is_int = not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)
    t_min = int(t.min()) if is_int and t.numel() else None
    t_max = int(t.max()) if is_int and t.numel() else None
    return check_targets(tuple(y.shape), tuple(t.shape), is_int, t_min, t_max, y_name, t_name)


def check_distribution_rows(rows: torch.Tensor, t_name: str = "t") -> None:
    """Rows (C,) / (N, C) must be probability distributions (as ``scratch.losses``)."""
    if rows.numel() == 0:
        return
    sums = rows.detach().sum(dim=-1)
    check_distribution(t_name, rows.shape[-1], (float(sums.min()), float(sums.max())),
                       float(rows.detach().min()), float(torch.finfo(rows.dtype).eps))


def _batched(y: torch.Tensor, t: torch.Tensor, is_int: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """View a single sample (C,) as a batch of one."""
    if y.dim() == 1:
        return y.unsqueeze(0), t.reshape(1) if is_int else t.unsqueeze(0)
    return y, t


def mean_squared_error(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    y = as_float_tensor(y)
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    check_same_shape("y", tuple(y.shape), "t", tuple(t.shape))
    if y.dim() == 2:
        check_batch("y", tuple(y.shape))
    n = y.shape[0] if y.dim() == 2 else 1
    return 0.5 * F.mse_loss(y, t, reduction="sum") / n


def cross_entropy_error(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    y = as_float_tensor(y)
    t = torch.as_tensor(t, device=y.device)
    is_int = check_target_tensor(y, t)
    y, t = _batched(y, t, is_int)
    logy = torch.log(y.clamp_min(torch.finfo(y.dtype).tiny))
    if is_int:
        return F.nll_loss(logy, t.long())
    return -(t.to(y.dtype) * logy).sum() / y.shape[0]


def softmax_cross_entropy(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a = as_float_tensor(logits)
    t = torch.as_tensor(t, device=a.device)
    is_int = check_target_tensor(a, t, "logits", "t")
    a, t = _batched(a, t, is_int)
    return F.cross_entropy(a, t.long() if is_int else t.to(a.dtype))
