"""SSD-lite: SSD's multi-scale predictors on the reduced Fast YOLO's convolutions.

The network (a `TappedTrunk`), for input_size = 7·2^p (112 by default):
    base    the reduced Fast YOLO's nine 3×3 convolutions (`reduced_fast_yolo`, same widths
            and max-pools), tapped at the 14×14 map (the convolution before the last pool)
            and at its last 7×7 map;
    extras  three SSD blocks, each a 1×1 convolution that narrows then a 3×3 stride-2 one:
            7 → 4 → 2 → 1, each output tapped;
    heads   on each of the five maps a 3×3 convolution to k·(4 + C + 1) channels, k the
            default boxes per cell, read (after NHWC) as k boxes of [4 offsets, C + 1 scores].
With batch_norm=True (what `minidet train --model ssd` builds) every trunk and extra
convolution is followed by a BatchNorm2d, before its leaky ReLU; the heads have none.
`forward(images)` returns (loc (N, A, 4), conf (N, A, C + 1)) in the order of `priors`
(map, row y, column x, box of the cell; `minidet.ssd.default_boxes`).

Default boxes for the built-in dataset (objects 10 % to 70 % of the image side,
log-uniform, so small ones are common): scales 0.1, 0.2, 0.35, 0.5, 0.7 on the 14, 7, 4, 2, 1 maps (and 0.9 for the last extra box),
so the smallest object side (0.1) has a square prior of its size every 1/14 of the image,
and each band of object sizes has a map whose priors are within a factor √2 of it;
ratios 2 and 1/2 on every map: the shapes are squarish, but about a fifth of the objects
are cut by the border and their boxes are elongated.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module
from ..layers import Conv2d, MaxPool2d, Permute, Sequential, TappedTrunk
from ..layers.base import Layer
from ..ssd import boxes_per_cell, default_boxes, detect
from .yolo import ARCHITECTURES, FAST_YOLO_FILTERS, _conv_block, _scaled

FEATURE_SIZES = (14, 7, 4, 2, 1)
SCALES = (0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
ASPECT_RATIOS = ((2,), (2,), (2,), (2,), (2,))
EXTRAS = ((256, 512), (128, 256), (128, 256))   # SSD's (1×1, 3×3) filters, scaled by width


class SSDModel(Layer):
    """An SSD: a TappedTrunk whose heads give per-map predictions, gathered into (loc, conf).

    `priors` (A, 4) centre boxes, `C` object classes, `input_size`, `arch` (what a checkpoint
    stores, see `models.build`), `feature_sizes` and `boxes_per_cell` per map.
    """

    def __init__(self, net: TappedTrunk, priors, feature_sizes, boxes, C: int, input_size: int, arch: dict):
        super().__init__()
        self.net, self.priors, self.C, self.input_size, self.arch = net, priors, C, input_size, arch
        self.feature_sizes, self.boxes_per_cell = tuple(feature_sizes), tuple(boxes)
        self.net.trunk[0].need_input_grad = False   # images need no gradient

    @property
    def layers(self):
        return self.net.layers

    def forward(self, images):
        if getattr(images, "ndim", None) != 4 or tuple(images.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"{self.arch['name']}: expected images of shape (N, 3, {self.input_size}, "
                             f"{self.input_size}), got {getattr(images, 'shape', type(images).__name__)}")
        outs = self.net.forward(images)
        xp = get_array_module(outs[0])
        n, d = images.shape[0], 5 + self.C
        flat = xp.concatenate([o.reshape(n, -1, d) for o in outs], axis=1)   # (N, A, 4 + C + 1)
        self._cache = [o.shape for o in outs]
        return flat[..., :4], flat[..., 4:]

    def backward(self, dloc, dconf):
        """Gradients of every parameter from dloc (N, A, 4) and dconf (N, A, C + 1); returns
        None (the images get no gradient unless `net.trunk[0].need_input_grad = True`)."""
        shapes = self._cached()
        xp = get_array_module(dloc)
        if dloc.shape != (shapes[0][0], len(self.priors), 4) or dconf.shape != dloc.shape[:2] + (self.C + 1,):
            raise ValueError(f"{self.arch['name']}.backward: expected dloc {(shapes[0][0], len(self.priors), 4)} "
                             f"and dconf {(shapes[0][0], len(self.priors), self.C + 1)}, got "
                             f"{tuple(dloc.shape)} and {tuple(dconf.shape)}")
        d = xp.concatenate([dloc, dconf], axis=-1)
        grads, start = [], 0
        for shape in shapes:
            count = int(np.prod(shape[1:])) // (5 + self.C)
            grads.append(xp.ascontiguousarray(d[:, start:start + count]).reshape(shape))
            start += count
        return self.net.backward(grads)

    def decode(self, output, score_threshold=0.01, iou_threshold=None):
        """Detections of `forward`'s output: one (boxes, scores, labels) per image (`ssd.detect`)."""
        loc, conf = output
        kwargs = {} if iou_threshold is None else {"iou_threshold": iou_threshold}
        return detect(loc, conf, self.priors, score_threshold=score_threshold, **kwargs)

    def train(self):
        self.training = True
        self.net.train()
        return self

    def eval(self):
        self.training = False
        self.net.eval()
        return self

    def parameters(self):
        return self.net.parameters()

    def named_parameters(self, prefix: str = ""):
        return self.net.named_parameters(prefix)

    def named_buffers(self, prefix: str = ""):
        return self.net.named_buffers(prefix)

    def to(self, device: str):
        self.net.to(device)
        self._cache = None
        return self

    def astype(self, dtype):
        self.net.astype(dtype)
        return self

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.arch["kwargs"].items())


def ssd_lite(input_size: int = 112, width: float = 0.25, C: int = 20, seed: int = 0,
             batch_norm: bool = False) -> SSDModel:
    """SSD-lite on the reduced Fast YOLO's convolutions (see the module docstring).

    input_size must be 7·2^p with 1 <= p <= 6 (the 14×14 tap needs a pool before the 7×7
    map); width scales every convolution's filters as in `reduced_fast_yolo`. batch_norm:
    a BatchNorm2d after every trunk and extra convolution (not the heads); `minidet train
    --model ssd` uses it (`ssd.task.ssd_arch` says why). False rebuilds the checkpoints
    written before it existed.
    """
    p = math.log2(input_size / 7) if input_size > 0 else -1
    if p != int(p) or not 1 <= p <= 6:
        raise ValueError(f"ssd_lite: input_size must be 7·2^p with 1 <= p <= 6 "
                         f"({', '.join(str(7 * 2**i) for i in range(1, 7))}), got {input_size}")
    if not 0 < width <= 4:
        raise ValueError(f"ssd_lite: width must be in (0, 4], got {width}")
    if int(C) != C or C < 1:
        raise ValueError(f"ssd_lite: C must be a positive number of classes, got {C}")
    rng = np.random.default_rng(seed)
    trunk, taps, c = [], [], 3
    for i, f in enumerate(FAST_YOLO_FILTERS):
        c = _conv_block(trunk, c, _scaled(f, width), 3, rng=rng, batch_norm=batch_norm)
        if i == int(p) - 1:
            taps.append((len(trunk) - 1, c))            # the 14×14 map, before its pool
        if i < int(p):
            trunk.append(MaxPool2d(2, 2))
    taps.append((len(trunk) - 1, c))                    # the last 7×7 map
    for narrow, wide in EXTRAS:
        narrow = _conv_block(trunk, c, _scaled(narrow, width), 1, rng=rng, batch_norm=batch_norm)
        c = _conv_block(trunk, narrow, _scaled(wide, width), 3, stride=2, rng=rng, batch_norm=batch_norm)
        taps.append((len(trunk) - 1, c))
    boxes = [boxes_per_cell(r) for r in ASPECT_RATIOS]
    heads = {}
    for (index, channels), k in zip(taps, boxes):
        conv = Conv2d(channels, k * (5 + C), 3, padding=1, rng=rng)
        conv.params["W"] *= 0.01   # start near zero: uniform class scores, offsets near the priors
        heads[index] = Sequential(conv, Permute(0, 2, 3, 1))
    priors = default_boxes(FEATURE_SIZES, SCALES, ASPECT_RATIOS)
    arch = {"name": "ssd_lite", "kwargs": dict(input_size=input_size, width=width, C=C, seed=seed,
                                               batch_norm=batch_norm)}
    return SSDModel(TappedTrunk(trunk, heads), priors, FEATURE_SIZES, boxes, C, input_size, arch)


ARCHITECTURES["ssd_lite"] = ssd_lite
