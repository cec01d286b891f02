"""SSD's default boxes (priors): a fixed set of boxes tiled over several feature maps.

Map k of side f_k gets, in every cell (row i = y, column j = x), boxes centred at
((j + 0.5) / f_k, (i + 0.5) / f_k), all in centre form `[cx, cy, w, h]` normalized to
[0, 1] by the image side. The boxes of a cell, in this order (Liu et al. 2016, §2.2):
    (s_k, s_k)                                   the map's scale, square
    (√(s_k·s_{k+1}), √(s_k·s_{k+1}))             a square between this scale and the next
    (s_k·√r, s_k/√r), (s_k/√r, s_k·√r)           for each ratio r ≥ 1 in order: wide, then tall
so a map with ratios [r_1, …, r_q] has 2 + 2q boxes per cell. The whole set is ordered by
map, then row, then column, then the boxes of the cell: the order in which an SSD model
lays out its predictions.
"""
from __future__ import annotations

import math

import numpy as np


def boxes_per_cell(aspect_ratios_k) -> int:
    """Number of default boxes in one cell of a map with these ratios (2 + 2q)."""
    return 2 + 2 * len(aspect_ratios_k)


def default_boxes(feature_sizes, scales, aspect_ratios, clip: bool = False) -> np.ndarray:
    """The default boxes of m square maps: (A, 4) `[cx, cy, w, h]` float64, A = Σ f_k²·(2 + 2q_k).

    feature_sizes: m map sides f_k. scales: m + 1 values s_1 … s_{m+1} in (0, 1]
    (s_{m+1} only sets the extra square box of the last map). aspect_ratios: m lists of
    ratios r ≥ 1 (each adds r and 1/r). clip=True clips each box's corners to [0, 1] and
    returns the clipped box in centre form.
    """
    sizes = [int(f) for f in feature_sizes]
    m = len(sizes)
    if m == 0 or any(f < 1 for f in sizes):
        raise ValueError(f"default_boxes: feature_sizes must be positive map sides, got {list(feature_sizes)}")
    if len(scales) != m + 1:
        raise ValueError(f"default_boxes: scales must hold m + 1 = {m + 1} values for {m} maps, "
                         f"got {len(scales)}")
    if any(not 0 < s <= 1 for s in scales):
        raise ValueError(f"default_boxes: scales must lie in (0, 1], got {list(scales)}")
    if len(aspect_ratios) != m:
        raise ValueError(f"default_boxes: aspect_ratios must hold one list per map ({m}), "
                         f"got {len(aspect_ratios)}")
    if any(r < 1 for ratios in aspect_ratios for r in ratios):
        raise ValueError(f"default_boxes: each aspect ratio r must be >= 1 (r adds r and 1/r), "
                         f"got {[list(r) for r in aspect_ratios]}")
    out = []
    for k, f in enumerate(sizes):
        s, extra = scales[k], math.sqrt(scales[k] * scales[k + 1])
        shapes = [(s, s), (extra, extra)]
        for r in aspect_ratios[k]:
            shapes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        wh = np.asarray(shapes, dtype=np.float64)                           # (b, 2)
        centres = (np.arange(f, dtype=np.float64) + 0.5) / f
        cy, cx = np.meshgrid(centres, centres, indexing="ij")               # row i is y
        grid = np.stack([cx, cy], axis=-1).reshape(f * f, 1, 2)
        boxes = np.concatenate([np.broadcast_to(grid, (f * f, len(shapes), 2)),
                                np.broadcast_to(wh, (f * f, len(shapes), 2))], axis=-1)
        out.append(boxes.reshape(-1, 4))
    priors = np.concatenate(out)
    if clip:
        x1y1 = np.clip(priors[:, :2] - priors[:, 2:] / 2, 0, 1)
        x2y2 = np.clip(priors[:, :2] + priors[:, 2:] / 2, 0, 1)
        priors = np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1], axis=1)
    return priors
