"""Mirror of ``scratch.init``: the He / Xavier / fixed-std schemes through ``nn.init``.

``nn.init.kaiming_normal_`` draws N(0, gain^2 / fan_in) with fan_in read from
the tensor's torch layout: dim 1 of a Linear weight (out, in) and C*FH*FW of a
Conv2d weight (FN, C, FH, FW).  gain^2 = 2 for relu (He) and 1 for "linear"
(the course's Xavier, sqrt(1 / fan_in)).
"""

from __future__ import annotations

import torch
from torch import nn


def init_weight_(weight: torch.Tensor, activation: str, weight_init_std: float | str,
                 generator: torch.Generator | None) -> None:
    """He / Xavier / fixed-std normal initialisation (the scratch schemes) via ``nn.init``.

    ``weight`` must be in torch's layout (fan_in over dims 1...); pass ``W.T``
    for a course-layout (in, out) Affine weight.
    """
    scheme = weight_init_std.lower() if isinstance(weight_init_std, str) else None
    if scheme == "auto":
        scheme = "he" if activation == "relu" else "xavier"
    if scheme == "he":        # std = sqrt(2 / fan_in)
        nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    elif scheme == "xavier":  # std = sqrt(1 / fan_in), the course's form
        nn.init.kaiming_normal_(weight, nonlinearity="linear", generator=generator)
    elif scheme is None:
        nn.init.normal_(weight, std=float(weight_init_std), generator=generator)
    else:
        raise ValueError(f"weight_init_std: expected a number, 'auto', 'he' or 'xavier', "
                         f"got {weight_init_std!r}")
