"""RoIPool2d: max pooling of each region of interest of a feature map into a fixed oh × ow grid.

Shapes: x (N, C, H, W) NCHW feature maps; rois (R, 5) rows `[batch_index, x1, y1, x2, y2]` in
input-image pixels (inclusive corners, as torchvision); y (R, C, oh, ow).

The rule is torchvision.ops.roi_pool's:
- each coordinate is multiplied by `spatial_scale` (1/16 for a stride-16 map) and rounded half
  away from zero (C's `round`, not NumPy's half-to-even) to a cell of the map;
- the RoI spans h = max(y2 − y1 + 1, 1) rows and w = max(x2 − x1 + 1, 1) columns;
- bin (ph, pw) covers rows y1 + floor(ph·h/oh) … y1 + ceil((ph + 1)·h/oh) − 1, clipped to
  [0, H), and likewise for columns: neighbouring bins overlap by a row when h/oh is not whole;
- an empty bin (wholly outside the map) gives 0, with no argmax;
- the maximum is the first in row-major order (strict >), so ties route the gradient to the
  top-left candidate.
The bin edges are computed in integer arithmetic (floor(a/b) = a // b), exact for any h and oh.

The backward routes each dy[r, c, ph, pw] to x[batch_index, c] at its argmax, adding where
several bins (of one RoI or of several) chose the same cell; the RoIs get no gradient. On the
CPU both passes are Numba loops: the forward in parallel over (roi, channel) pairs, which
own their outputs; the backward in parallel over channels, which own their planes of dx, so
nothing races and the order of additions is fixed (deterministic). On the GPU (CuPy x) the
bins are computed on the host and CUDA kernels pool and gather (no atomics). All of it (the
bins, the reference, the bin scan compiled for both backends) lives in kernels/roi_pool.py;
this layer checks its inputs and calls it.
"""
from __future__ import annotations

import numpy as np

from kernels import roi_pool as op
from kernels.roi_pool import roi_bins, roi_pool2d_forward_naive  # noqa: F401  (the reference, exported by minidet.layers)

from ..backend import to_numpy
from .base import Layer


def roi_pool2d_forward(x, rois, output_size, spatial_scale: float):
    """x (N, C, H, W) NumPy or CuPy, rois (R, 5) NumPy, checked by the caller -> (y (R, C, oh, ow),
    cache); cache = (int64 argmax (R, C, oh, ow): flat index i·W + j in its plane, −1 for an
    empty bin; int64 batch indices (R,); the bins (hstart, hend, wstart, wend); x.shape)."""
    oh, ow = output_size
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
    batch = rois[:, 0].astype(np.int64)
    bins = roi_bins(rois, spatial_scale, oh, ow, x.shape[2], x.shape[3])
    y, argmax = op.forward(x, batch, *bins)
    return y, (argmax, batch, bins, x.shape)


def roi_pool2d_backward(dy, cache):
    """dx (N, C, H, W): each dy[r, c, ph, pw] added at its argmax in x[batch[r], c]."""
    argmax, batch, bins, x_shape = cache
    return op.backward(dy, argmax, x_shape, batch, *bins)


class RoIPool2d(Layer):
    """RoIPool2d(output_size, spatial_scale): `forward(x, rois)` -> (R, C, oh, ow); no params.

    output_size: an int or an (oh, ow) pair; spatial_scale: map cells per input pixel.
    """

    def __init__(self, output_size, spatial_scale: float):
        super().__init__()
        size = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
        if len(size) != 2 or any(int(v) != v or v < 1 for v in size):
            raise ValueError(f"RoIPool2d: output_size must be an int or an (oh, ow) pair of ints >= 1, "
                             f"got {output_size!r}")
        if not np.isfinite(spatial_scale) or spatial_scale <= 0:
            raise ValueError(f"RoIPool2d: spatial_scale must be a positive number, got {spatial_scale!r}")
        self.output_size = (int(size[0]), int(size[1]))
        self.spatial_scale = float(spatial_scale)

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale:g}"

    def check_rois(self, rois, x_shape):
        """The RoIs as a float64 (R, 5) NumPy array, or a ValueError naming what is wrong."""
        rois = to_numpy(rois)
        if getattr(rois, "ndim", None) != 2 or rois.shape[1] != 5:
            raise ValueError(f"{self.label()}: rois must have shape (R, 5) with rows [batch_index, x1, y1, x2, y2], "
                             f"got shape {getattr(rois, 'shape', type(rois).__name__)} for x of shape {tuple(x_shape)}")
        rois = np.asarray(rois, dtype=np.float64)
        bad = ~np.isfinite(rois).all(axis=1)
        if bad.any():
            r = int(np.argmax(bad))
            raise ValueError(f"{self.label()}: rois row {r} is not finite: {rois[r].tolist()} "
                             f"(rois shape {rois.shape}, x shape {tuple(x_shape)})")
        b = rois[:, 0]
        bad = (b != np.floor(b)) | (b < 0) | (b >= x_shape[0])
        if bad.any():
            r = int(np.argmax(bad))
            raise ValueError(f"{self.label()}: rois row {r} has batch index {b[r]:g}, not an integer in "
                             f"[0, {x_shape[0]}) for x of shape {tuple(x_shape)} (rois shape {rois.shape})")
        return rois

    def forward(self, x, rois):
        self._check_input(x, "(N, C, H, W)")
        rois = self.check_rois(rois, x.shape)
        y, self._cache = roi_pool2d_forward(x, rois, self.output_size, self.spatial_scale)
        return y

    def __call__(self, x, rois):
        return self.forward(x, rois)

    def backward(self, dy):
        return roi_pool2d_backward(dy, self._cached())


class RoIPool2dFixed(Layer):
    """A RoIPool2d whose RoIs are fixed: `forward(x)` -> (R, C, oh, ow). The one-input layer
    contract (for `gradcheck`, which perturbs x only) when the RoIs are constants of a step."""

    def __init__(self, pool: RoIPool2d, rois):
        super().__init__()
        self.pool, self.rois = pool, np.asarray(rois, dtype=np.float64)

    def extra_repr(self):
        return f"{self.pool.extra_repr()}, {len(self.rois)} rois"

    def forward(self, x):
        return self.pool.forward(x, self.rois)

    def backward(self, dy):
        return self.pool.backward(dy)
