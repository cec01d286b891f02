"""Faster R-CNN at small scale (Ren et al. 2015): the reduced Fast YOLO's convolutions, a region
proposal network on their last map, and Fast R-CNN's RoI pooling and head.

The network, for images (N, 3, S, S), S = input_size (112 by default), NCHW:
    trunk   the first `TRUNK_CONVS` (7) of the reduced Fast YOLO's 3×3 convolutions
            (`reduced_fast_yolo`'s widths, leaky ReLU 0.1), a 2×2 max-pool after each of the
            first three: features (N, F, S/8, S/8), stride 8. Fewer pools than YOLO's 7×7 grid
            keep RoI pooling's rounding (a cell is 8 pixels) below the smallest objects' side
            (10 % of the image, 11 pixels at 112); the last two 1024-filter convolutions are
            left out, since at stride 8 they would cost 3× the rest of the network;
    rpn     `rcnn.rpn_head`: 3×3 conv, leaky ReLU, 1×1 conv to 5·A channels (A = 9 anchors a
            cell, 3 scales × 3 ratios, `ANCHOR_SCALES` of the input side): (N, 5A, S/8, S/8);
    pool    RoIPool2d(POOLED, 1/8) of the features at each RoI: (R, F, 3, 3);
    head    Flatten, Linear(9F → HIDDEN), leaky ReLU, Linear(→ 5·(C + 1)): the second stage's
            output (`rcnn.detections`: C + 1 logits, class-specific deltas).

`forward(images)` depends on the mode, because in training the second stage's RoIs are sampled
with the ground truth, which only the loss has (`rcnn.task.FasterRCNNLoss`):
- training: returns the RPN output (N, 5A, h, w) and keeps the features; the loss then calls
  `propose` and `classify(rois)` (approximate joint training: the proposals are constants of
  the step) and `backward(drpn, dhead)` sums both stages' gradients on the features;
- eval: runs everything: proposals (`TEST_PROPOSALS` an image), RoI pooling, head; returns
  (proposals: one (P_n, 4) array of input-pixel corners per image, output (ΣP_n, 5·(C + 1))
  in the same order, or None when there is no proposal), which `decode` turns into (boxes
  normalized to [0, 1], scores, labels) per image.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..layers import Flatten, LeakyReLU, Linear, MaxPool2d, RoIPool2d, Sequential
from ..layers.container import Container
from ..rcnn import anchor_grid, class_detections, propose, rpn_head, rpn_rows, split_rpn_output
from .yolo import ARCHITECTURES, FAST_YOLO_FILTERS, _conv_block, _scaled

TRUNK_CONVS, POOLS = 7, 3
ANCHOR_SCALES = (0.15, 0.3, 0.6)   # anchor sides as fractions of the input side (objects: 0.1 to 0.7)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
POOLED, HIDDEN = 3, 256
# Proposals per image: (kept before NMS, kept after). Training samples the RoIs among them.
TRAIN_PROPOSALS, TEST_PROPOSALS = (600, 100), (600, 50)
CLASS_NMS_IOU = 0.4  # per-class NMS of the detections (the YOLO models' default too)


class FasterRCNN(Container):
    """The network of the module docstring. Attributes: `anchors` (h·w·A, 4) pixel corners in
    `rcnn.anchor_grid`'s row order, `num_anchors` (A), `C`, `input_size`, `arch` (what a
    checkpoint stores). Parameters are named "trunk.<i>.<key>", "rpn.<i>.<key>", "head.<i>.<key>"."""

    def __init__(self, trunk: Sequential, rpn: Sequential, pool: RoIPool2d, head: Sequential, anchors,
                 num_anchors: int, C: int, input_size: int, arch: dict):
        super().__init__()
        self.trunk, self.rpn, self.pool, self.head = trunk, rpn, pool, head
        self.layers = [trunk, rpn, pool, head]
        self.anchors, self.num_anchors = np.asarray(anchors, dtype=np.float64), int(num_anchors)
        self.C, self.input_size, self.arch = C, input_size, arch
        self.trunk.layers[0].need_input_grad = False   # images need no gradient
        self._features = None

    def _check_images(self, images):
        if getattr(images, "ndim", None) != 4 or tuple(images.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"{self.arch['name']}: expected images of shape (N, 3, {self.input_size}, "
                             f"{self.input_size}), got {getattr(images, 'shape', type(images).__name__)}")

    def forward(self, images):
        self._check_images(images)
        self._features = self.trunk.forward(images)
        out = self.rpn.forward(self._features)
        self._cache = True
        if self.training:
            return out
        proposals = self.propose(out, *TEST_PROPOSALS)
        rois = rois_of(proposals)
        return proposals, (self.classify(rois) if len(rois) else None)

    def propose(self, rpn_out, pre_nms_top_n: int, post_nms_top_n: int) -> list:
        """One (P_n, 4) float64 array of proposals (pixel corners, best first) per image of the
        RPN output (N, 5A, h, w) (`rcnn.propose`: decode, clip, NMS 0.7)."""
        logits, deltas = split_rpn_output(to_numpy(rpn_out), self.num_anchors)
        rows, d = rpn_rows(logits, deltas)
        S = self.input_size
        return [propose(self.anchors, rows[n], d[n], S, S, pre_nms_top_n, post_nms_top_n).boxes
                for n in range(len(rows))]

    def classify(self, rois):
        """The second stage on the last forward's features: rois (R, 5) [image index, x1, y1,
        x2, y2] input pixels -> (R, 5·(C + 1))."""
        if self._features is None:
            raise RuntimeError(f"{self.arch['name']}.classify: call forward first")
        return self.head.forward(self.pool.forward(self._features, rois))

    def backward(self, drpn, dhead=None):
        """Gradients of every parameter from drpn (N, 5A, h, w) and, when the second stage ran,
        dhead (R, 5·(C + 1)); returns None (the images get no gradient)."""
        self._cached()
        dfeatures = self.rpn.backward(drpn)
        if dhead is not None:
            dfeatures = dfeatures + self.pool.backward(self.head.backward(dhead))
        return self.trunk.backward(dfeatures)

    def decode(self, output, score_threshold=0.05, iou_threshold=None):
        """Detections of the eval `forward`'s output: one (boxes (K, 4) normalized corners,
        scores (K,), labels (K,)) per image (`rcnn.class_detections`)."""
        return decode_two_stage(output, self.C, self.input_size, score_threshold, iou_threshold)

    def named_parameters(self, prefix: str = ""):
        for name in ("trunk", "rpn", "head"):
            yield from getattr(self, name).named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix: str = ""):
        for name in ("trunk", "rpn", "head"):
            yield from getattr(self, name).named_buffers(f"{prefix}{name}.")

    def to(self, device: str):
        super().to(device)
        self._features = None
        return self

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.arch["kwargs"].items())


def decode_two_stage(output, C: int, input_size: int, score_threshold=0.05, iou_threshold=None) -> list:
    """(proposals: one (P_n, 4) input-pixel array per image, second-stage output (ΣP_n, 5·(C + 1))
    or None) -> one (boxes (K, 4) normalized corners, scores (K,), labels (K,)) per image."""
    proposals, out = output
    iou = CLASS_NMS_IOU if iou_threshold is None else iou_threshold
    out = None if out is None else to_numpy(out)
    S, result, start = input_size, [], 0
    for p in proposals:
        d = class_detections(p, out[start:start + len(p)] if len(p) else None, C, S, S, score_threshold, iou)
        start += len(p)
        result.append((d.boxes / S, d.scores, d.labels))
    return result


def rois_of(proposals) -> np.ndarray:
    """A list of (P_n, 4) boxes, one per image -> (ΣP_n, 5) rows [n, x1, y1, x2, y2]."""
    rows = [np.concatenate([np.full((len(p), 1), n, dtype=np.float64), p], axis=1)
            for n, p in enumerate(proposals)]
    return np.concatenate(rows) if rows else np.zeros((0, 5))


def check_settings(name: str, input_size, width, C):
    """A ValueError naming `name` and the argument unless the two-stage models can take them."""
    if int(input_size) != input_size or input_size < 16 or input_size % 8:
        raise ValueError(f"{name}: input_size must be a multiple of 8, at least 16, got {input_size}")
    if not 0 < width <= 4:
        raise ValueError(f"{name}: width must be in (0, 4], got {width}")
    if int(C) != C or C < 1:
        raise ValueError(f"{name}: C must be a positive number of classes, got {C}")


def trunk_of(width: float, rng):
    """The trunk (a Sequential, stride 2^POOLS) and its output channels."""
    layers, c = [], 3
    for i, f in enumerate(FAST_YOLO_FILTERS[:TRUNK_CONVS]):
        c = _conv_block(layers, c, _scaled(f, width), 3, rng=rng)
        if i < POOLS:
            layers.append(MaxPool2d(2, 2))
    return Sequential(*layers), c


def head_of(channels: int, C: int, rng) -> Sequential:
    """The second stage's head on (R, channels, POOLED, POOLED) pooled RoIs -> (R, 5·(C + 1))."""
    last = Linear(HIDDEN, 5 * (C + 1), rng=rng)
    last.params["W"] *= 0.1   # near-uniform class probabilities and small deltas at the start
    return Sequential(Flatten(), Linear(channels * POOLED * POOLED, HIDDEN, rng=rng), LeakyReLU(0.1), last)


def faster_rcnn(input_size: int = 112, width: float = 0.25, C: int = 20, seed: int = 0) -> FasterRCNN:
    """Faster R-CNN on the reduced Fast YOLO's convolutions (see the module docstring).
    input_size must be a multiple of 8 (at least 16); width scales the filters as in
    `reduced_fast_yolo`."""
    check_settings("faster_rcnn", input_size, width, C)
    rng = np.random.default_rng(seed)
    trunk, c = trunk_of(width, rng)
    stride = 2 ** POOLS
    A = len(ANCHOR_SCALES) * len(ANCHOR_RATIOS)
    rpn = rpn_head(c, A, mid_channels=c // 2, rng=rng)
    head = head_of(c, C, rng)
    side = input_size // stride
    anchors = anchor_grid(side, side, stride, [s * input_size for s in ANCHOR_SCALES], ANCHOR_RATIOS)
    arch = {"name": "faster_rcnn", "kwargs": dict(input_size=input_size, width=width, C=C, seed=seed)}
    return FasterRCNN(trunk, rpn, RoIPool2d(POOLED, 1 / stride), head, anchors, A, C, input_size, arch)


ARCHITECTURES["faster_rcnn"] = faster_rcnn
