"""Mirror of ``scratch.lr_scheduler``: torch's own schedulers, same names and arguments.

``torch.optim.lr_scheduler.StepLR``, ``CosineAnnealingLR`` and ``ReduceLROnPlateau``
are what the scratch classes reproduce (the parity tests step both side by side and
compare every learning rate); they act on every param group of a ``torch.optim``
optimizer.  ``SCHEDULERS`` maps the same short names as ``scratch.lr_scheduler``.
"""

from __future__ import annotations

from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR

__all__ = ["SCHEDULERS", "CosineAnnealingLR", "LRScheduler", "ReduceLROnPlateau", "StepLR"]

SCHEDULERS: dict[str, type] = {"step": StepLR, "cosine": CosineAnnealingLR,
                               "plateau": ReduceLROnPlateau}
