"""Faster R-CNN's region proposal network head, and one training step of a trunk + head.

The head slides a small network over the trunk's last map (Ren et al. 2015, 3.1): a 3×3
convolution and a leaky ReLU, then ONE 1×1 convolution with 5·A output channels: channels
0 … A − 1 are the objectness logits of the A anchors of each cell, channels A … 5A − 1 their
deltas, 4a + k (after the first A) holding delta k of anchor a. One convolution for both keeps
the model a plain `Sequential` (whatever checks a Sequential checks this); `split_rpn_output`
cuts its (N, 5A, h, w) output into the (N, A, h, w) and (N, 4A, h, w) maps `rpn_rows` takes.
"""
from __future__ import annotations

import numpy as np

from ..layers import Conv2d, LeakyReLU, Sequential
from .anchors import rpn_targets
from .rpn_loss import rpn_maps, rpn_rows


def rpn_head(in_channels: int, num_anchors: int, mid_channels: int | None = None, rng=None) -> Sequential:
    """3×3 conv (in → mid, padding 1), leaky ReLU 0.1, 1×1 conv (mid → 5·A): (N, in, h, w) → (N, 5A, h, w)."""
    rng = np.random.default_rng(0) if rng is None else rng
    mid = mid_channels or in_channels
    last = Conv2d(mid, 5 * num_anchors, 1, rng=rng)
    last.params["W"] *= 0.1  # start near σ = 1/2 everywhere and near-zero deltas
    return Sequential(Conv2d(in_channels, mid, 3, padding=1, rng=rng), LeakyReLU(0.1), last)


def split_rpn_output(out, num_anchors: int):
    """(N, 5A, h, w) -> (logits (N, A, h, w), deltas (N, 4A, h, w)), views of `out`."""
    A = num_anchors
    if out.ndim != 4 or out.shape[1] != 5 * A:
        raise ValueError(f"split_rpn_output: expected (N, {5 * A}, h, w) for {A} anchors, got {out.shape}")
    return out[:, :A], out[:, A:]


def rpn_step(model, loss, optimizer, images, gt_boxes, anchors, num_anchors: int, rng, num: int = 256) -> float:
    """One SGD step of `model` (trunk + RPN head: (N, 3, H, W) → (N, 5A, h, w)) on the RPN loss.

    images (N, 3, H, W) float32 NCHW; gt_boxes: one (G_i, 4) pixel-corner array per image;
    anchors (h·w·A, 4) from `anchor_grid` for the model's map. Returns the loss value.
    """
    N, _, H, W = images.shape
    model.train()
    out = model.forward(images)
    logits, deltas = split_rpn_output(out, num_anchors)
    rows, d = rpn_rows(logits, deltas)
    targets = [rpn_targets(anchors, g, W, H, rng, num=num) for g in gt_boxes]
    labels = np.stack([t.labels for t in targets])
    value = loss.forward(rows.astype(np.float64), d.astype(np.float64), labels, np.stack([t.targets for t in targets]))
    drows, dd = loss.backward()
    dlogits, ddeltas = rpn_maps(drows, dd, num_anchors, *out.shape[2:])
    model.backward(np.concatenate([dlogits, ddeltas], axis=1).astype(out.dtype))
    optimizer.step()
    return value
