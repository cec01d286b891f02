"""R-CNN's input: each proposal cut from the image and warped to a fixed square, whatever its
aspect ratio (Girshick et al. 2014, section 2.1 and appendix A).

Context: the box is first grown so that, once warped to `size` pixels, `context` pixels of
image surround the original box on each side (R-CNN uses 16 of 227). Pixels the grown box
takes from outside the image are `fill` (R-CNN uses the image mean; the mean colour here).
Sampling is bilinear at the centres of the output pixels: output column j (0 … size − 1)
reads image x = x1 + (j + 0.5)·(x2 − x1)/size, in the continuous frame where pixel i covers
[i, i + 1) and has its value at i + 0.5.
"""
from __future__ import annotations

import numpy as np


def context_box(box, size: int, context: int):
    """The box grown so that `context` of the `size` warped pixels lie outside it on each side."""
    if not 0 <= 2 * context < size:
        raise ValueError(f"context_box: need 0 <= 2·context < size, got context={context}, size={size}")
    x1, y1, x2, y2 = (float(v) for v in box)
    px = context * (x2 - x1) / (size - 2 * context)
    py = context * (y2 - y1) / (size - 2 * context)
    return np.array([x1 - px, y1 - py, x2 + px, y2 + py])


def warp_crop(image, box, size: int, context: int = 0, fill=None):
    """Cut `box` (pixel corners [x1, y1, x2, y2]) from an (H, W, 3) image (HWC) and warp it.

    Returns (3, size, size) float32 CHW on the image's scale (0–255 for uint8); `fill` (a value
    or an RGB triple; default the image's mean colour) where the box leaves the image.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"warp_crop: image must have shape (H, W, C), got {image.shape}")
    H, W, C = image.shape
    x1, y1, x2, y2 = context_box(box, size, context)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"warp_crop: box {list(box)} has no area")
    img = image.astype(np.float32)
    fill = img.reshape(-1, C).mean(axis=0) if fill is None else np.broadcast_to(np.asarray(fill, np.float32), (C,))
    # Sample positions in pixel-index units (the value of pixel i sits at i); a position inside
    # the image but within half a pixel of its border reads the border pixel.
    xs = x1 + (np.arange(size) + 0.5) * (x2 - x1) / size - 0.5
    ys = y1 + (np.arange(size) + 0.5) * (y2 - y1) / size - 0.5
    inside = ((ys >= -0.5) & (ys < H - 0.5))[:, None] & ((xs >= -0.5) & (xs < W - 0.5))[None, :]
    xs, ys = np.clip(xs, 0, W - 1), np.clip(ys, 0, H - 1)
    x0 = np.minimum(np.floor(xs).astype(np.int64), W - 2) if W > 1 else np.zeros(size, np.int64)
    y0 = np.minimum(np.floor(ys).astype(np.int64), H - 2) if H > 1 else np.zeros(size, np.int64)
    fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
    x1i, y1i = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    out = np.zeros((size, size, C), np.float32)
    for r, wy in ((y0, 1 - fy), (y1i, fy)):
        for c, wx in ((x0, 1 - fx), (x1i, fx)):
            out += wy[:, None, None] * wx[None, :, None] * img[r][:, c]
    out[~inside] = fill
    return np.ascontiguousarray(out.transpose(2, 0, 1))
