"""torchref: the PyTorch mirror of ``scratch``.

Same module names, public names and signatures as ``scratch``, taking torch
tensors on any device and built on torch's own ops, autograd and optimizers.
Parameters cross between the two sides only through ``torchref.convert``.
"""

from torchref.device import available_devices, resolve_device

__all__ = ["available_devices", "resolve_device"]
