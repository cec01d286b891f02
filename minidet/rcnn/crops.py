"""R-CNN's input: each proposal cut from the image and warped to a fixed square, whatever its
aspect ratio (Girshick et al. 2014, section 2.1 and appendix A).

Context: each box is first grown so that, once warped to `size` pixels, `context` pixels of
image surround the original box on each side (R-CNN uses 16 of 227). The cutting and bilinear
resampling are `minidet.data.crop.crop_resize`'s (chapter 0's window classifier reads its
windows the same way); where a grown box leaves the image, the border pixels are repeated
(R-CNN fills with the mean instead).
"""
from __future__ import annotations

import numpy as np

from ..data.crop import crop_resize


def context_boxes(boxes, size: int, context: int):
    """(K, 4) pixel corners grown so that `context` of the `size` warped pixels lie outside each
    original box on every side: (K, 4) float64."""
    if not 0 <= 2 * context < size:
        raise ValueError(f"context_boxes: need 0 <= 2·context < size, got context={context}, size={size}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pad = context * (b[:, 2:] - b[:, :2]) / (size - 2 * context)  # (K, 2): x and y
    return np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1)


def warp_crops(image, boxes, size: int, context: int = 0):
    """Cut each box (K, 4) pixel corners [x1, y1, x2, y2] from an (H, W, 3) uint8 RGB image (HWC)
    and warp it: (K, 3, size, size) float32 in [0, 1] (NCHW), the network's input."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"warp_crops: image must have shape (H, W, 3), got {image.shape}")
    H, W = image.shape[:2]
    grown = context_boxes(boxes, size, context)
    if ((grown[:, 2:] - grown[:, :2]) <= 0).any():
        raise ValueError("warp_crops: every box needs a positive width and height")
    return crop_resize(image, grown / [W, H, W, H], size)
