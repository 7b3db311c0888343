"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplies.

A 3x3 filter ``g`` slid over a 4x4 input tile ``d`` gives a 2x2 output tile
(the 4 windows of the tile).  Directly that is 4 * 9 = 36 multiplies; Winograd's
minimal filtering algorithm gets the same 2x2 tile from 16 multiplies:

    U = G g G^T          (4, 4)   the filter, transformed once per call
    V = B^T d B          (4, 4)   the input tile, transformed (adds only)
    Y = A^T (U * V) A    (2, 2)   the output tile; * is elementwise (16 multiplies)

with the constant matrices

    B^T = [[1, 0, -1,  0],     G = [[1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],          [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1, 1,  0],          [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1]]

A convolution with C input and F output channels sums over c, and the sum can
move inside the output transform: ``Y[f] = A^T (sum_c U[f, c] * V[c]) A``.  For
each of the 16 positions xi of the 4x4 transformed tile, the sum over c is one
matrix product over all P tiles of the batch:

    M_xi = V_xi @ U_xi       (P, C) @ (C, F) -> (P, F)      16 batched products

Tiles: the output (OH, OW) is cut into TH x TW tiles of 2x2 (TH = ceil(OH/2),
an odd size gets an edge tile whose extra row or column is computed and then
cropped); output tile (t, s) reads the 4x4 input tile at rows 2t..2t+3 and
columns 2s..2s+3 of the zero-padded input, so neighbouring input tiles overlap
by 2.  Each 2-D transform ``X^T z X`` is one matrix of Kronecker products
acting on the 16 (or 9) numbers of the tile flattened row by row,
``vec(X^T z X) = (X^T kron X^T) vec(z)``, so every transform below is one GEMM.

Layout: the input is copied once into channels-last order, so that the tiles
become the rows and the channels the columns of each V_xi, and split by pixel
parity: plane (i, j), i, j in {0, 1}, holds the padded pixels (2q + i, 2p + j).
Entry (2a + i, 2e + j) of tile (r, s) is pixel (2(r + a) + i, 2(s + e) + j),
plane (i, j) at (r + a, s + e): the 16 entries of all tiles are 4 shifted
slices (a, e) of the 4 planes, copied with long contiguous runs instead of
16 gathers of C numbers at a time.

Backward.  Every step is linear, so each step's backward is its transpose:

    dM_xi = (A^T kron A^T)^T applied to the 2x2 tiles of dY (cropped part: 0)
    dU_xi = V_xi^T @ dM_xi        dW = G^T dU G        (summed over the tiles)
    dV_xi = dM_xi @ U_xi^T        dd = B dV B^T        (per tile)
    dx    = the tiles dd added back where they were read (they overlap), the
            padding cropped: the col2im of 4x4 tiles at stride 2, done as the
            transpose of the parity split: 4 shifted adds (a, e) into the 4
            planes, then one transposing copy per plane into dx.

Numerics: in exact arithmetic this is the same convolution.  In floating point
the transforms add and subtract up to 4 inputs (and the filter transform
halves), so the rounding differs from a direct sum; see ``torchref.tolerance``
for the float32 error measured against torch.

This is an internal algorithm of ``scratch.conv.Convolution``, which uses it
where it measured faster (see that class); its torch counterpart is
``torch.nn.functional.conv2d`` itself.
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_dout, conv_output_size, forward_cache
from scratch.im2col import _Workspace

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

# The 2-D transforms on row-major flattened tiles: vec(X^T z X) = kron(X^T, X^T) vec(z).
_BB = np.kron(B_T, B_T)        # (16, 16)  input tile -> V
_GG = np.kron(G, G)            # (16, 9)   filter -> U
_AA = np.kron(A_T, A_T)        # (4, 16)   M -> output tile


def winograd_filter(W: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (f, c) filter of W (F, C, 3, 3), as (16, C, F)."""
    f, c = W.shape[:2]
    g = W.reshape(f, c, 9).transpose(2, 1, 0).reshape(9, c * f)          # (9, C*F)
    return (_GG.astype(W.dtype) @ g).reshape(16, c, f)


def _parities(pad: tuple[int, int], size: tuple[int, int]) -> list[tuple]:
    """Where the image sits in each parity plane of its padded copy.

    Padded row 2q + i is image row 2q + i - pad_h: for parity i the image rows
    y0, y0 + 2, ... (``rows`` of them) are plane rows q0, q0 + 1, ...; the same
    for the columns.  Returns (i, j, (q0, rows, y0), (p0, cols, x0)) for the 4 planes.
    """
    def axis(k: int, p: int, length: int) -> tuple[int, int, int]:
        q0 = (p - k + 1) // 2
        y0 = 2 * q0 + k - p
        return q0, len(range(y0, length, 2)), y0
    return [(i, j, axis(i, pad[0], size[0]), axis(j, pad[1], size[1]))
            for i in range(2) for j in range(2)]


class Winograd3x3:
    """A 3x3, stride-1 convolution by Winograd F(2x2, 3x3), with its backward.

    Same shapes as ``scratch.conv.Convolution`` with a (F, C, 3, 3) filter:
    x (N, C, H, W) -> out (N, F, OH, OW), ``OH = H + 2 pad_h - 2``.  Unlike the
    layers, W and b are passed to each ``forward`` (the owning Convolution
    holds them) and ``backward(dout, input_grad)`` returns ``(dx, dW, db)``
    (dx is None when ``input_grad`` is False).

    Speed: the batch is processed a few images at a time (``chunk_bytes``
    bounds the largest per-chunk array, M or V), so the tiles, V, M and their
    gradients stay in the CPU's cache between the steps instead of making a
    round trip to memory per step; whole-batch arrays are only the padded
    input's and dx's parity planes, V (needed by dU), and the 2x2 output tiles
    Y and dY (so that the transposing copies from and to NCHW are four calls
    per batch, not per chunk; per chunk measured no faster).  Internal arrays
    live in a ``_Workspace`` and are reused while the shapes repeat (a
    workspace keeps them between calls, several times the input's size); out,
    dx, dW and db are new arrays.
    """

    def __init__(self, pad: tuple[int, int], chunk_bytes: int = 1 << 19) -> None:
        self.pad = pad
        self.chunk_bytes = chunk_bytes
        self.work = _Workspace()
        self.x_shape: tuple[int, ...] = ()
        self.V: np.ndarray | None = None       # (16, P, C), cached for dU
        self.U: np.ndarray | None = None       # (16, C, F), cached for dV

    def _geometry(self, x_shape: tuple[int, ...], f: int, itemsize: int
                  ) -> tuple[int, int, int, int, int]:
        """OH, OW, TH, TW, and the number of images per chunk."""
        n, c, h, w = x_shape
        oh, ow = conv_output_size((h, w), (3, 3), (1, 1), self.pad)
        th, tw = -(-oh // 2), -(-ow // 2)
        per_image = 16 * th * tw * max(c, f) * itemsize
        return oh, ow, th, tw, max(1, min(n, self.chunk_bytes // per_image))

    def _chunks(self, n: int, nc: int) -> list[tuple[int, int]]:
        return [(n0, min(n, n0 + nc)) for n0 in range(0, n, nc)]

    def _buffers(self, names: str, shapes: dict, chunks: list, dtype: np.dtype) -> dict:
        """Per chunk size k, the workspace arrays ``names`` of shape ``shapes[name](k)``."""
        return {k: [self.work.get(f"{name}{k}", shapes[name](k), dtype) for name in names.split()]
                for k in {n1 - n0 for n0, n1 in chunks}}

    def forward(self, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        (n, c, h, w), f, dtype = x.shape, W.shape[0], x.dtype
        oh, ow, th, tw, nc = self._geometry(x.shape, f, dtype.itemsize)
        t, chunks = th * tw, self._chunks(n, nc)
        self.x_shape = x.shape
        # The zero-padded input, channels-last, split by pixel parity: xs[i, j, n, q, p]
        # is padded pixel (2q + i, 2p + j), sized for the edge tiles.  Only the image is
        # written: the padding stays 0 (the strips past a smaller image are cleared).
        xs = self.work.get("x_par", (2, 2, n, th + 1, tw + 1, c), dtype, fill=0)
        for i, j, (q0, rows, y0), (p0, cols, x0) in _parities(self.pad, (h, w)):
            xs[i, j, :, q0:q0 + rows, p0:p0 + cols] = x[:, :, y0::2, x0::2].transpose(0, 2, 3, 1)
            xs[i, j, :, q0 + rows:] = 0
            xs[i, j, :, :, p0 + cols:] = 0
        self.U = winograd_filter(W.astype(dtype, copy=False))            # U = G g G^T
        self.V = self.work.get("V", (16, n * t, c), dtype)
        y = self.work.get("Y", (2, 2, n, th, tw, f), dtype)
        bufs = self._buffers("d M", {"d": lambda k: (4, 4, k, th, tw, c),
                                     "M": lambda k: (16, k * t, f)}, chunks, dtype)
        bb, aa = _BB.astype(dtype), _AA.astype(dtype)
        for n0, n1 in chunks:           # a few images at a time: d, V, M stay in cache
            (d, m), k = bufs[n1 - n0], n1 - n0
            par = xs[:, :, n0:n1]       # tile (r, s)'s entry (2a + i, 2e + j): xs[i, j, r+a, s+e]
            d[0:2, 0:2] = par[:, :, :, :th, :tw]
            d[2:4, 0:2] = par[:, :, :, 1:, :tw]
            d[0:2, 2:4] = par[:, :, :, :th, 1:]
            d[2:4, 2:4] = par[:, :, :, 1:, 1:]
            v = self.V[:, n0 * t:n1 * t]
            np.matmul(bb, d.reshape(16, k * t * c), out=v.reshape(16, k * t * c))  # B^T d B
            np.matmul(v, self.U, out=m)                                   # 16 products
            np.matmul(aa, m.reshape(16, k * t * f),                       # Y = A^T M A
                      out=y[:, :, n0:n1].reshape(4, k * t * f))
        out = np.empty((n, f, oh, ow), dtype)
        for a in range(2):              # output row 2r + a, column 2s + e of tile (r, s)
            for e in range(2):
                rows, cols = (oh - a + 1) // 2, (ow - e + 1) // 2        # edge tiles cropped
                out[:, :, a::2, e::2] = y[a, e, :, :rows, :cols].transpose(0, 3, 1, 2)
        out += b.reshape(f, 1, 1)
        return out

    def backward(self, dout: np.ndarray, input_grad: bool = True
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        forward_cache(self, "V")
        (n, c, h, w), f = self.x_shape, self.U.shape[2]
        dtype = np.result_type(dout, self.V)
        oh, ow, th, tw, nc = self._geometry(self.x_shape, f, dtype.itemsize)
        t, chunks = th * tw, self._chunks(n, nc)
        check_dout(self, np.shape(dout), (n, f, oh, ow))
        db = dout.sum(axis=(0, 2, 3))
        # dY as 2x2 tiles (2, 2, N, TH, TW, F); the cropped part of edge tiles is 0.
        dy = self.work.get("dY", (2, 2, n, th, tw, f), dtype)
        for a in range(2):
            for e in range(2):
                rows, cols = (oh - a + 1) // 2, (ow - e + 1) // 2
                dy[a, e, :, :rows, :cols] = dout[:, :, a::2, e::2].transpose(0, 2, 3, 1)
                dy[a, e, :, rows:] = 0
                dy[a, e, :, :, cols:] = 0
        # dx, padded, by pixel parity: S[i, j, n, q, p] is padded pixel (2q + i, 2p + j).
        sp = self.work.get("S", (2, 2, n, th + 1, tw + 1, c), dtype) if input_grad else None
        if sp is not None:
            sp[:, :, :, th] = 0
            sp[:, :, :, :, tw] = 0
        bufs = self._buffers("dM dV dd", {"dM": lambda k: (16, k * t, f),
                                          "dV": lambda k: (16, k * t, c),
                                          "dd": lambda k: (4, 4, k, th, tw, c)}, chunks, dtype)
        bb, aa = _BB.astype(dtype), _AA.astype(dtype)
        ut = np.ascontiguousarray(self.U.transpose(0, 2, 1), dtype)    # faster in BLAS than a view
        du = np.zeros((16, c, f), dtype)
        for n0, n1 in chunks:
            (dm, dv, dd), k = bufs[n1 - n0], n1 - n0
            np.matmul(aa.T, dy[:, :, n0:n1].reshape(4, k * t * f), out=dm.reshape(16, k * t * f))
            v = self.V[:, n0 * t:n1 * t].astype(dtype, copy=False)
            du += np.matmul(v.transpose(0, 2, 1), dm)                     # dU = V^T dM
            if sp is None:
                continue
            np.matmul(dm, ut, out=dv)                                     # dV = dM U^T
            np.matmul(bb.T, dv.reshape(16, k * t * c), out=dd.reshape(16, k * t * c))  # B dV B^T
            # Tile (r, s)'s entry (2a + i, 2e + j) is padded pixel (2(r + a) + i, 2(s + e) + j):
            # four shifted adds (a, e) of whole arrays, each contiguous along (s, c).
            par = sp[:, :, n0:n1]
            par[:, :, :, :th, :tw] = dd[0:2, 0:2]
            par[:, :, :, 1:, :tw] += dd[2:4, 0:2]
            par[:, :, :, :th, 1:] += dd[0:2, 2:4]
            par[:, :, :, 1:, 1:] += dd[2:4, 2:4]
        dg = _GG.T.astype(dtype) @ du.reshape(16, c * f)                 # G^T dU G: (9, C*F)
        dW = np.ascontiguousarray(dg.reshape(3, 3, c, f).transpose(3, 2, 0, 1))
        if sp is None:
            return None, dW, db
        dx = np.empty((n, c, h, w), dtype)
        for i, j, (q0, rows, y0), (p0, cols, x0) in _parities(self.pad, (h, w)):
            dx[:, :, y0::2, x0::2] = sp[i, j, :, q0:q0 + rows, p0:p0 + cols].transpose(0, 3, 1, 2)
        return dx, dW, db
