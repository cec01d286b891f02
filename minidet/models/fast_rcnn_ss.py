"""Fast R-CNN at small scale (Girshick 2015): selective-search proposals, the trunk run once per
image, RoI pooling of its features, and the second stage's head; Faster R-CNN's network
(`faster_rcnn.py`) without the RPN.

Proposals: `minidet.proposals.selective_search` (its default settings) on the network's own
input, the (S, S) image as the loader made it, at most `MAX_PROPOSALS` of them, best first;
they are input pixels at once, whatever the original image's size. Selective search costs far
more per image than a training step, so each image's are computed once and kept in memory,
keyed by the image's bytes (SHA-1): a run without augmentation (`minidet train --model
fast-rcnn` refuses augmentation, which would make every epoch's images new) computes them in
its first epoch and on the first validation, then reads them back.

`forward(images)` (N, 3, S, S) NCHW in [0, 1]:
- training: returns the proposals (one (P_n, 4) array per image) and keeps the features; the
  loss (`rcnn.task.FastRCNNLoss`) samples RoIs among them and the ground truth, then calls
  `classify(rois)`, and `backward(dhead)` runs head, RoI pooling and trunk in reverse;
- eval: (proposals, output (ΣP_n, 5·(C + 1))), as `FasterRCNN`, and the same `decode`.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..backend import to_numpy
from ..layers import RoIPool2d
from ..proposals import selective_search
from .faster_rcnn import POOLS, POOLED, FasterRCNN, check_settings, head_of, rois_of, trunk_of
from .yolo import ARCHITECTURES

MAX_PROPOSALS = 200


class ProposalMemo:
    """`memo(images)`: one (P_n, 4) float64 array of selective-search proposals (pixel corners,
    at most MAX_PROPOSALS, best first) per image (N, 3, S, S) in [0, 1], each image's computed
    once and kept, keyed by the SHA-1 of its bytes as uint8 (HWC): `pixels(images)`."""

    def __init__(self):
        self.found = {}

    @staticmethod
    def pixels(images) -> np.ndarray:
        """(N, 3, S, S) floats in [0, 1] -> (N, S, S, 3) uint8, what selective search reads."""
        return (np.clip(to_numpy(images).astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)

    def __call__(self, images) -> list:
        out = []
        for image in self.pixels(images):
            key = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
            if key not in self.found:
                self.found[key] = selective_search(image, max_proposals=MAX_PROPOSALS)
            out.append(self.found[key])
        return out

    def __len__(self):
        return len(self.found)

    def clear(self):
        """Forget every image's proposals (a timing that must pay for selective search again)."""
        self.found.clear()


class SelectiveSearchFastRCNN(FasterRCNN):
    """Fast R-CNN on selective-search proposals (see the module docstring). `rpn` is None."""

    def __init__(self, trunk, pool, head, C: int, input_size: int, arch: dict):
        super().__init__(trunk, None, pool, head, np.zeros((0, 4)), 0, C, input_size, arch)
        self.layers = [trunk, pool, head]
        self.proposals = ProposalMemo()

    def forward(self, images):
        self._check_images(images)
        self._features = self.trunk.forward(images)
        self._cache = True
        proposals = self.proposals(images)
        if self.training:
            return proposals
        rois = rois_of(proposals)
        return proposals, (self.classify(rois) if len(rois) else None)

    def backward(self, dhead=None):
        """Gradients of every parameter from dhead (R, 5·(C + 1)); None (no RoI was sampled)
        sets them all to zero. Returns None (the images get no gradient)."""
        self._cached()
        if dhead is None:
            for _, params, grads, key in self.named_parameters():
                grads[key] = params[key] * 0
            return None
        return self.trunk.backward(self.pool.backward(self.head.backward(dhead)))

    def named_parameters(self, prefix: str = ""):
        for name in ("trunk", "head"):
            yield from getattr(self, name).named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix: str = ""):
        for name in ("trunk", "head"):
            yield from getattr(self, name).named_buffers(f"{prefix}{name}.")


def fast_rcnn_ss(input_size: int = 112, width: float = 0.25, C: int = 20, seed: int = 0) -> SelectiveSearchFastRCNN:
    """Fast R-CNN on selective-search proposals, with Faster R-CNN's trunk and head."""
    check_settings("fast_rcnn_ss", input_size, width, C)
    rng = np.random.default_rng(seed)
    trunk, c = trunk_of(width, rng)
    head = head_of(c, C, rng)
    arch = {"name": "fast_rcnn_ss", "kwargs": dict(input_size=input_size, width=width, C=C, seed=seed)}
    return SelectiveSearchFastRCNN(trunk, RoIPool2d(POOLED, 1 / 2 ** POOLS), head, C, input_size, arch)


ARCHITECTURES["fast_rcnn_ss"] = fast_rcnn_ss
