"""Fast R-CNN's network (Girshick 2015): the trunk runs once per image, each RoI is max-pooled
from the trunk's feature map (RoIPool2d) instead of being cut from the image, and a head
classifies and regresses every pooled RoI.

    x (N, 3, H, W) NCHW ──trunk──▶ features (N, F, h, w) ──RoIPool2d(rois)──▶ (R, F, oh, ow)
                        ──head──▶ (R, 5·(C + 1)): C + 1 logits, then class-specific deltas
                                   (the layout of `split_outputs`, as R-CNN's crop classifier)

The RoIs (R, 5) rows [batch_index, x1, y1, x2, y2] in input pixels are constants of a step.
The backward runs head, RoI pooling and trunk in reverse and returns dx.
"""
from __future__ import annotations

import numpy as np

from ..layers import Conv2d, Flatten, LeakyReLU, Linear, MaxPool2d, RoIPool2d, Sequential
from ..layers.container import Container


class FastRCNN(Container):
    """FastRCNN(trunk, pool, head): `forward(x, rois)` -> (R, 5·(C + 1)); `backward(dout)` -> dx.
    Parameters are named "trunk.<i>.<key>" and "head.<i>.<key>"."""

    def __init__(self, trunk: Sequential, pool: RoIPool2d, head: Sequential):
        super().__init__()
        self.trunk, self.pool, self.head = trunk, pool, head
        self.layers = [trunk, pool, head]

    def forward(self, x, rois):
        y = self.head.forward(self.pool.forward(self.trunk.forward(x), rois))
        self._cache = True
        return y

    def __call__(self, x, rois):
        return self.forward(x, rois)

    def backward(self, dout):
        self._cached()
        return self.trunk.backward(self.pool.backward(self.head.backward(dout)))

    def named_children(self):
        return (("trunk", self.trunk), ("head", self.head))   # the RoI pooling holds neither

    def extra_repr(self):
        return f"{self.pool.extra_repr()}"


def fast_rcnn(num_classes: int, width: int = 16, pooled: int = 4, rng=None) -> FastRCNN:
    """A small Fast R-CNN: a trunk of three (3×3 conv, leaky ReLU 0.1, 2×2 max-pool) blocks of
    width, 2·width, 4·width filters (stride 8, so RoIPool2d's spatial_scale is 1/8), RoI pooling
    to pooled × pooled, and one Linear to (C + 1) logits and 4·(C + 1) deltas."""
    rng = np.random.default_rng(0) if rng is None else rng
    layers, c = [], 3
    for f in (width, 2 * width, 4 * width):
        layers += [Conv2d(c, f, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2)]
        c = f
    trunk = Sequential(*layers)
    trunk.layers[0].need_input_grad = False  # the images need no gradient
    last = Linear(c * pooled * pooled, 5 * (num_classes + 1), rng=rng)
    last.params["W"] *= 0.1  # near-uniform class probabilities and small deltas at the start
    return FastRCNN(trunk, RoIPool2d(pooled, 1 / 8), Sequential(Flatten(), last))
