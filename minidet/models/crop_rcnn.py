"""R-CNN at small scale (Girshick et al. 2014): selective-search proposals, each cut from the
image and warped to a square, and a small CNN that classifies every crop and regresses its box.

Proposals: `fast_rcnn_ss.ProposalMemo` (selective search on the network's own (S, S) input,
computed once per image, so `minidet train --model rcnn` trains without augmentation, as
`--model fast-rcnn` does). Crops: `rcnn.crops.warp_crops` (CROP × CROP pixels, CONTEXT of
them of image around the box). Classifier: `models.crop_cnn` (three conv blocks of w, 2w, 4w
filters, w = round(64 · width), then one Linear) to the second stage's output (R, 5·(C + 1))
(`rcnn.detections`), so the loss (`rcnn.task.FastRCNNLoss`: RoIs sampled among the proposals
and the ground truth) and `decode` are Fast R-CNN's.

`forward(images)` (N, 3, S, S) NCHW in [0, 1]: training, the proposals (one (P_n, 4) array per
image), the images kept for `classify(rois)`; eval, (proposals, output (ΣP_n, 5·(C + 1))).
The CNN runs once per RoI: that is R-CNN's cost, which Fast R-CNN removes.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_device
from ..layers.container import Container
from ..rcnn.crops import warp_crops
from .crop_cnn import crop_cnn
from .fast_rcnn_ss import ProposalMemo
from .faster_rcnn import check_settings, decode_two_stage, rois_of
from .yolo import ARCHITECTURES

CROP, CONTEXT = 32, 2
CHUNK = 1024   # RoIs classified at once in eval (bounds the memory of the convolutions' columns)


class CropRCNN(Container):
    """R-CNN (see the module docstring): `classifier` maps (R, 3, CROP, CROP) crops to (R, 5·(C + 1))."""

    def __init__(self, classifier, C: int, input_size: int, arch: dict):
        super().__init__()
        self.classifier, self.layers = classifier, [classifier]
        self.C, self.input_size, self.arch = C, input_size, arch
        self.proposals = ProposalMemo()
        self._pixels = None

    def forward(self, images):
        if getattr(images, "ndim", None) != 4 or tuple(images.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"{self.arch['name']}: expected images of shape (N, 3, {self.input_size}, "
                             f"{self.input_size}), got {getattr(images, 'shape', type(images).__name__)}")
        self._pixels, self._dtype = ProposalMemo.pixels(images), images.dtype
        self._device = "cpu" if get_array_module(images) is np else "cuda"
        self._cache = True
        proposals = self.proposals(images)
        if self.training:
            return proposals
        rois = rois_of(proposals)
        if not len(rois):
            return proposals, None
        outs = [self.classify(rois[i:i + CHUNK]) for i in range(0, len(rois), CHUNK)]
        return proposals, get_array_module(outs[0]).concatenate(outs)

    def classify(self, rois):
        """rois (R, 5) [image index, x1, y1, x2, y2] input pixels of the last forward's images ->
        (R, 5·(C + 1)): each box warped from its image, then the classifier."""
        if self._pixels is None:
            raise RuntimeError(f"{self.arch['name']}.classify: call forward first")
        rois = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
        crops = np.empty((len(rois), 3, CROP, CROP), np.float32)
        for n in np.unique(rois[:, 0]).astype(np.int64):
            rows = rois[:, 0] == n
            crops[rows] = warp_crops(self._pixels[n], rois[rows, 1:], CROP, CONTEXT)
        return self.classifier.forward(to_device(crops.astype(self._dtype), self._device))

    def backward(self, dhead=None):
        """Gradients of the classifier from dhead (R, 5·(C + 1)) of the last `classify`; None
        (no RoI sampled) sets them to zero. Returns None (the images get no gradient)."""
        self._cached()
        if dhead is None:
            for _, params, grads, key in self.named_parameters():
                grads[key] = params[key] * 0
            return None
        return self.classifier.backward(dhead)

    def decode(self, output, score_threshold=0.05, iou_threshold=None):
        """Detections of the eval `forward`'s output, as Faster R-CNN's (`decode_two_stage`)."""
        return decode_two_stage(output, self.C, self.input_size, score_threshold, iou_threshold)

    def named_parameters(self, prefix: str = ""):
        yield from self.classifier.named_parameters(f"{prefix}classifier.")

    def named_buffers(self, prefix: str = ""):
        yield from self.classifier.named_buffers(f"{prefix}classifier.")

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.arch["kwargs"].items())


def crop_rcnn(input_size: int = 112, width: float = 0.25, C: int = 20, seed: int = 0) -> CropRCNN:
    """R-CNN on selective-search proposals of (input_size)² images (see the module docstring)."""
    check_settings("crop_rcnn", input_size, width, C)
    classifier = crop_cnn(5 * (C + 1), CROP, max(1, int(round(64 * width))), np.random.default_rng(seed),
                          where="crop_rcnn")
    arch = {"name": "crop_rcnn", "kwargs": dict(input_size=input_size, width=width, C=C, seed=seed)}
    return CropRCNN(classifier, C, input_size, arch)


ARCHITECTURES["crop_rcnn"] = crop_rcnn
