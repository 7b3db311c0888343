"""Strategies of IDX files (the MNIST format; re-exported by ``torchref.testing.strategies``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# ----------------------------------------------------------------------------- IDX files

IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_arrays(draw: st.DrawFn, max_dims: int = 3, max_side: int = 5,
               min_side: int = 0) -> tuple[int, np.ndarray]:
    """(IDX dtype code, array of that dtype in native order), 1 to ``max_dims`` dimensions,
    sizes ``min_side`` to ``max_side`` (0: empty arrays included), values over the dtype's
    whole range."""
    code = draw(st.sampled_from(sorted(IDX_CODES)))
    dtype = np.dtype(IDX_CODES[code]).newbyteorder("=")
    shape = tuple(draw(st.lists(st.integers(min_side, max_side), min_size=1, max_size=max_dims)))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=False, width=8 * dtype.itemsize)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return code, draw(hnp.arrays(dtype, shape, elements=elements))


def idx_bytes(code: int, array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, written out from the format's definition (a helper)."""
    import struct
    head = struct.pack(">BBBB", 0, 0, code, array.ndim)
    head += struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(IDX_CODES[code]).tobytes()
