"""Faster R-CNN's anchors and the targets of its region proposal network (Ren et al. 2015, 3.1).

The anchor grid. On a feature map of h × w cells, `stride` input pixels apart, each cell (i, j)
holds A = len(scales)·len(ratios) anchors centred at ((j + 0.5)·stride, (i + 0.5)·stride) in
input pixels; the anchor of scale s and ratio r (height / width) is s/√r wide and s·√r high
(area s², whatever the ratio). Rows of `anchor_grid` are ordered (i, j, a) with a fastest, scales
outer and ratios inner: the order of an RPN head's (N, A·k, h, w) output permuted to
(N, h, w, A·k) and reshaped to (N, h·w·A, k).

RPN targets (`rpn_targets`), per image: anchors that cross the image border are ignored; an
anchor is positive when its IoU with some object is ≥ `pos_iou` (0.7), or when it is (one of)
the anchors of highest IoU with an object (so every object has one, however small);
negative when its best IoU is < `neg_iou` (0.3); `num` (256) anchors are sampled, up to half
positive, the rest negative; all others are ignored. Positive targets are `encode_deltas` with
unit stds (the RPN's offsets are not normalized).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..boxes import box_iou
from .deltas import encode_deltas

DEFAULT_SCALES = (24, 48, 96)
DEFAULT_RATIOS = (0.5, 1.0, 2.0)


def anchor_shapes(scales=DEFAULT_SCALES, ratios=DEFAULT_RATIOS):
    """(A, 2) float64 (width, height) of each anchor of a cell, scales outer, ratios inner."""
    s = np.asarray(scales, dtype=np.float64)[:, None]
    r = np.asarray(ratios, dtype=np.float64)[None, :]
    return np.stack([(s / np.sqrt(r)).ravel(), (s * np.sqrt(r)).ravel()], axis=1)


def anchor_grid(h: int, w: int, stride: float, scales=DEFAULT_SCALES, ratios=DEFAULT_RATIOS):
    """(h·w·A, 4) float64 pixel corners of every anchor of an h × w map, rows ordered (i, j, a)."""
    if h < 1 or w < 1 or stride <= 0:
        raise ValueError(f"anchor_grid: need h, w >= 1 and stride > 0; got {h}, {w}, {stride}")
    shapes = anchor_shapes(scales, ratios)
    cy, cx = np.meshgrid((np.arange(h) + 0.5) * stride, (np.arange(w) + 0.5) * stride, indexing="ij")
    centres = np.stack([cx.ravel(), cy.ravel()], axis=1)[:, None, :]  # (h·w, 1, 2)
    half = shapes[None, :, :] / 2
    return np.concatenate([centres - half, centres + half], axis=2).reshape(-1, 4)


class RpnTargets(NamedTuple):
    """labels (K,) int64: 1 positive, 0 negative, −1 ignored; targets (K, 4) deltas (zeros
    except on positives)."""

    labels: np.ndarray
    targets: np.ndarray


def rpn_targets(anchors, gt_boxes, width: int, height: int, rng: np.random.Generator, num: int = 256,
                fg_fraction: float = 0.5, pos_iou: float = 0.7, neg_iou: float = 0.3) -> RpnTargets:
    """The RPN's training labels and targets for the K anchors (K, 4) of one width × height
    image, whose objects are gt_boxes (G, 4), all in pixel corners (see the module docstring)."""
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    K = len(anchors)
    labels = np.full(K, -1, dtype=np.int64)
    targets = np.zeros((K, 4))
    inside = np.flatnonzero((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0)
                            & (anchors[:, 2] <= width) & (anchors[:, 3] <= height))
    match = np.zeros(K, dtype=np.int64)  # the object each anchor overlaps most
    if len(gt) == 0:
        labels[inside] = 0
    else:
        iou = np.asarray(box_iou(anchors[inside], gt))  # (K_inside, G)
        best_in, match_in = iou.max(axis=1), iou.argmax(axis=1)
        labels[inside[best_in < neg_iou]] = 0
        top = iou.max(axis=0)  # each object's best anchor IoU
        is_top = ((iou == top[None, :]) & (top[None, :] > 0)).any(axis=1)
        labels[inside[(best_in >= pos_iou) | is_top]] = 1
        match[inside] = match_in
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    keep_pos = rng.permutation(pos)[:int(num * fg_fraction)]
    keep_neg = rng.permutation(neg)[:num - len(keep_pos)]
    sampled = np.full(K, -1, dtype=np.int64)
    sampled[keep_pos], sampled[keep_neg] = 1, 0
    if len(keep_pos):
        targets[keep_pos] = encode_deltas(anchors[keep_pos], gt[match[keep_pos]], stds=(1, 1, 1, 1))
    return RpnTargets(sampled, targets)
