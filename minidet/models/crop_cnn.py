"""The small CNN that classifies image crops: the sliding-window detector's (chapter 0,
`minidet.sliding.window_classifier`) and R-CNN's (`minidet.rcnn.classifier.crop_classifier`)."""
from __future__ import annotations

import numpy as np

from ..layers import Conv2d, Flatten, LeakyReLU, Linear, MaxPool2d, Sequential


def crop_cnn(outputs: int, size: int, width: int = 16, rng=None, where: str = "crop_cnn") -> Sequential:
    """Three (3×3 conv, leaky ReLU 0.1, 2×2 max-pool) blocks of width, 2·width, 4·width
    filters, Flatten, then one Linear to `outputs`, its weights scaled by 0.1 so that class
    probabilities start near uniform and regressions small. Input (N, 3, size, size), size a
    positive multiple of 8 (a ValueError naming `where` otherwise); the crops need no gradient."""
    if size % 8 or size < 8:
        raise ValueError(f"{where}: size must be a positive multiple of 8 (divisible by 8), got {size}")
    rng = np.random.default_rng(0) if rng is None else rng
    layers, c = [], 3
    for f in (width, 2 * width, 4 * width):
        layers += [Conv2d(c, f, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2)]
        c = f
    head = Linear(c * (size // 8) ** 2, outputs, rng=rng)
    head.params["W"] *= 0.1
    model = Sequential(*layers, Flatten(), head)
    model.layers[0].need_input_grad = False
    return model
