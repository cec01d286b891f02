"""Boxes cut out of an image and resampled to a square: the crops of chapter 0's window
classifier (`minidet.sliding`) and of R-CNN (`minidet.rcnn.crops`)."""
from __future__ import annotations

import numpy as np


def crop_resize(image, boxes, size: int) -> np.ndarray:
    """Cut each box out of `image` and resample it to size × size by bilinear interpolation.

    image: (H, W, 3) uint8 RGB. boxes: (K, 4) normalized corners (may reach outside the
    image: the border pixels are repeated). Output pixel (i, j) of a box samples the point
    at the centre of the (i, j)-th cell of a size × size grid laid on the box (pixel k of the
    image covers [k, k + 1)). Returns (K, 3, size, size) float32 in [0, 1].
    """
    img = np.asarray(image, dtype=np.float32) / 255.0
    H, W = img.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    t = (np.arange(size) + 0.5) / size                                     # (size,)
    xs = (boxes[:, 0:1] + t * (boxes[:, 2:3] - boxes[:, 0:1])) * W - 0.5   # (K, size)
    ys = (boxes[:, 1:2] + t * (boxes[:, 3:4] - boxes[:, 1:2])) * H - 0.5
    xs, ys = np.clip(xs, 0, W - 1), np.clip(ys, 0, H - 1)
    x0, y0 = np.minimum(xs.astype(np.int64), W - 2 if W > 1 else 0), np.minimum(ys.astype(np.int64), H - 2 if H > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
    # Rows first, then columns: (K, size, W, 3) → (K, size, size, 3).
    rows = img[y0] * (1 - fy)[:, :, None, None] + img[y1] * fy[:, :, None, None]
    k = np.arange(len(boxes))[:, None, None]
    i = np.arange(size)[None, :, None]
    out = rows[k, i, x0[:, None, :]] * (1 - fx)[:, None, :, None] + rows[k, i, x1[:, None, :]] * fx[:, None, :, None]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)
