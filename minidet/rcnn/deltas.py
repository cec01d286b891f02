"""Box regression targets of the R-CNN family (Girshick et al. 2014, appendix C).

A proposal P = [x1, y1, x2, y2] and its ground truth G (corners in one frame, continuous: width
x2 − x1) are compared by centre and size:

    tx = (Gcx − Pcx) / Pw,   ty = (Gcy − Pcy) / Ph,   tw = log(Gw / Pw),   th = log(Gh / Ph),

each divided by `stds` (0.1, 0.1, 0.2, 0.2 by default, so the four targets have a similar
spread). The offsets are relative to the proposal's size, so they do not depend on the
image's scale; the logs make growing and shrinking symmetric.
"""
from __future__ import annotations

import numpy as np

STDS = (0.1, 0.1, 0.2, 0.2)


def _centres(boxes):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + w / 2, b[:, 1] + h / 2, w, h


def encode_deltas(proposals, gt, stds=STDS):
    """(K, 4) proposals and their (K, 4) matched ground truths -> (K, 4) float64 [tx, ty, tw, th] / stds.
    Both need positive widths and heights."""
    px, py, pw, ph = _centres(proposals)
    gx, gy, gw, gh = _centres(gt)
    if len(px) != len(gx):
        raise ValueError(f"encode_deltas: {len(px)} proposals for {len(gx)} ground truths")
    if (pw <= 0).any() or (ph <= 0).any() or (gw <= 0).any() or (gh <= 0).any():
        raise ValueError("encode_deltas: boxes need positive width and height")
    t = np.stack([(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph)], axis=1)
    return t / np.asarray(stds, dtype=np.float64)


def decode_deltas(proposals, deltas, stds=STDS, max_log_scale=np.log(1000 / 16)):
    """The inverse of `encode_deltas`: (K, 4) proposals and (K, 4) deltas -> (K, 4) float64 corners.
    tw and th are capped at `max_log_scale` (as torchvision does) so a wild prediction cannot
    overflow exp."""
    px, py, pw, ph = _centres(proposals)
    t = np.asarray(deltas, dtype=np.float64).reshape(-1, 4) * np.asarray(stds, dtype=np.float64)
    cx, cy = px + t[:, 0] * pw, py + t[:, 1] * ph
    w = pw * np.exp(np.minimum(t[:, 2], max_log_scale))
    h = ph * np.exp(np.minimum(t[:, 3], max_log_scale))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
