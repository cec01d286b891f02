"""Multi-scale sliding windows: the proposal baseline that looks at nothing but the image size.

Square-ish windows of several sides (fractions of the image's shorter side) and aspect ratios
(width / height), slid with a stride of a fraction of the window, clipped to the image.
A window list has no order of merit, so it is returned in a random order drawn from `seed`:
its first n are a uniform sample, the fair baseline for "recall at n proposals".
"""
from __future__ import annotations

import numpy as np

DEFAULT_SIDES = (0.1, 0.15, 0.22, 0.33, 0.5, 0.7, 1.0)
DEFAULT_RATIOS = (0.5, 1.0, 2.0)


def sliding_windows(width: int, height: int, sides=DEFAULT_SIDES, ratios=DEFAULT_RATIOS,
                    stride: float = 0.25, seed: int = 0):
    """(P, 4) float64 pixel corners [x1, y1, x2, y2] of every window, clipped to the
    width × height image, no box twice, in a random order (seeded).

    sides: window sizes as fractions of min(width, height) (the side of the square of equal
    area); ratios: width / height; stride: the step as a fraction of the window's width
    (horizontally) and height (vertically).
    """
    if width < 1 or height < 1 or stride <= 0:
        raise ValueError(f"sliding_windows: need width, height >= 1 and stride > 0; got {width}, {height}, {stride}")
    boxes = []
    short = min(width, height)
    for s in sides:
        for r in ratios:
            w, h = s * short * np.sqrt(r), s * short / np.sqrt(r)
            w, h = min(w, width), min(h, height)
            xs = np.arange(0.0, width - w + 1e-9, max(stride * w, 1.0))
            ys = np.arange(0.0, height - h + 1e-9, max(stride * h, 1.0))
            gx, gy = np.meshgrid(xs, ys)
            boxes.append(np.stack([gx.ravel(), gy.ravel(), gx.ravel() + w, gy.ravel() + h], axis=1))
    boxes = np.round(np.concatenate(boxes), 6)
    boxes = np.unique(boxes, axis=0)
    return boxes[np.random.default_rng(seed).permutation(len(boxes))]
