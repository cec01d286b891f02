"""The YOLO v1 family (Redmon et al. 2015) built from minidet layers.

Every model maps images (N, 3, H, W), H = W = input_size, to the grid (N, S, S, 5B + C)
of the contract (per cell: B boxes [x, y, sqrt_w, sqrt_h, conf], then C class scores).
"""
from __future__ import annotations

import math

import numpy as np

from ..layers import BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Permute, Reshape, Sequential

FAST_YOLO_FILTERS = (16, 32, 64, 128, 256, 512, 1024, 1024, 1024)


class YoloModel(Sequential):
    """A Sequential whose output is the YOLO grid, with the architecture it was built from.

    `arch` = {"name": ..., "kwargs": {...}}: enough to rebuild it (see `build`), and what
    a checkpoint stores. `input_size`, `S`, `B`, `C` describe its input and output.
    `trunk_length`: how many of the layers are the convolutional trunk (the rest is the
    detection head); `minidet.pretrain.trunk_of` takes those.
    """

    def __init__(self, layers, arch: dict, input_size: int, S: int, B: int, C: int, trunk_length=None):
        super().__init__(*layers)
        self.arch, self.input_size, self.S, self.B, self.C = arch, input_size, S, B, C
        if trunk_length is None:  # everything before the first Flatten
            trunk_length = next((i for i, layer in enumerate(self.layers) if isinstance(layer, Flatten)),
                                len(self.layers))
        self.trunk_length = int(trunk_length)
        # The images need no gradient: the first convolution skips its dx (backward returns None).
        self.layers[0].need_input_grad = False

    def forward(self, images):
        if getattr(images, "ndim", None) != 4 or images.shape[1] != 3 or \
                images.shape[2] != self.input_size or images.shape[3] != self.input_size:
            raise ValueError(f"{self.arch['name']}: expected images of shape (N, 3, {self.input_size}, "
                             f"{self.input_size}), got {getattr(images, 'shape', type(images).__name__)}")
        return super().forward(images)

    def backward(self, dpred):
        """Gradients of every parameter from dpred (N, S, S, 5B + C). Returns None: the
        images get no gradient (set `model.layers[0].need_input_grad = True` to get one)."""
        return super().backward(dpred)

    def summary(self) -> str:
        from .summary import summary

        return summary(self)

    def __repr__(self):
        return self.summary()


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _conv_block(layers, c_in, c_out, k, stride=1, rng=None, batch_norm=False):
    """Conv2d [→ BatchNorm2d] → LeakyReLU(0.1) appended to `layers`; returns c_out."""
    layers.append(Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, rng=rng))
    if batch_norm:
        layers.append(BatchNorm2d(c_out))
    layers.append(LeakyReLU(0.1))
    return c_out


def _head(layers, features, hidden1, hidden2, S, B, C, rng, dropout_seed):
    """Flatten → [Linear → (leaky)] → Linear + leaky → Dropout 0.5 → Linear → grid."""
    layers.append(Flatten())
    if hidden1:
        layers.append(Linear(features, hidden1, rng=rng))  # yolo-tiny: no activation here
        features = hidden1
    out = Linear(hidden2, S * S * (5 * B + C), rng=rng)
    # The output layer starts near zero: predictions of ~0 put the first loss near the
    # number of objects instead of hundreds, and the first steps of SGD do not blow up.
    out.params["W"] *= 0.01
    layers += [Linear(features, hidden2, rng=rng), LeakyReLU(0.1), Dropout(0.5, seed=dropout_seed),
               out, Reshape(S, S, 5 * B + C)]


def _conv_head(layers, channels, B, C, rng):
    """A 1×1 convolution to 5B + C channels, read as the grid: (N, 5B+C, S, S) → (N, S, S, 5B+C)."""
    out = Conv2d(channels, 5 * B + C, 1, rng=rng)
    out.params["W"] *= 0.01  # start near zero, as the fully connected output layer does
    layers += [out, Permute(0, 2, 3, 1)]


HEADS = ("fc", "conv")


def reduced_fast_yolo(input_size: int = 112, width: float = 0.25, S: int = 7, B: int = 2, C: int = 20,
                      seed: int = 0, head: str = "fc") -> YoloModel:
    """Fast YOLO, narrower and on smaller images: for one GPU or a CPU.

    Filters and the two hidden fully connected layers are scaled by `width`. The input
    must be S·2^p with p ≤ 6: the model keeps p of Fast YOLO's six 2×2 max-pools (the first
    p), so the last convolution always sees an S×S map, as in the full model.
    `reduced_fast_yolo(448, 1.0)` is `fast_yolo()`.

    head="fc" (the default) is Fast YOLO's fully connected head: every cell's outputs have
    their own weights. head="conv" replaces it with one 1×1 convolution from the last S×S
    map to 5B + C channels, shared by all cells (the head of YOLO v2, not v1's); the output
    grid, its layout and the loss are the same. On the built-in dataset the convolutional
    head learns about 15× faster (`benchmarks/head_study.py`), which is why `minidet train`
    uses it by default on the CPU.
    """
    if head not in HEADS:
        raise ValueError(f"reduced_fast_yolo: head must be one of {HEADS}, got {head!r}")
    p = math.log2(input_size / S) if input_size > 0 else -1
    if p != int(p) or not 0 <= p <= 6:
        raise ValueError(f"reduced_fast_yolo: input_size must be S·2^p with 0 <= p <= 6 "
                         f"(S={S}: {', '.join(str(S * 2**i) for i in range(7))}), got {input_size}")
    if not 0 < width <= 4:
        raise ValueError(f"reduced_fast_yolo: width must be in (0, 4], got {width}")
    rng = np.random.default_rng(seed)
    layers, c = [], 3
    for i, f in enumerate(FAST_YOLO_FILTERS):
        c = _conv_block(layers, c, _scaled(f, width), 3, rng=rng)
        if i < int(p):
            layers.append(MaxPool2d(2, 2))
    trunk_length = len(layers)
    if head == "conv":
        _conv_head(layers, c, B, C, rng)
    else:
        # The first fully connected layer keeps yolo-tiny's 256 units at every width: it is the
        # bottleneck through which all S·S·(5B+C) outputs pass, and it costs little.
        _head(layers, c * S * S, 256, _scaled(4096, width), S, B, C, rng, seed)
    name = "fast_yolo" if (input_size, width, head) == (448, 1.0, "fc") else "reduced_fast_yolo"
    kwargs = dict(S=S, B=B, C=C, seed=seed) if name == "fast_yolo" else \
        dict(input_size=input_size, width=width, S=S, B=B, C=C, seed=seed, head=head)
    return YoloModel(layers, {"name": name, "kwargs": kwargs}, input_size, S, B, C, trunk_length)


def fast_yolo(S: int = 7, B: int = 2, C: int = 20, seed: int = 0) -> YoloModel:
    """The paper's Fast YOLO: darknet's November 2015 yolo-tiny.cfg, 448×448 input.

    Nine 3×3 convolutions (16 … 1024 filters, padding 1, leaky ReLU 0.1), a 2×2 max-pool after
    each of the first six; Linear 50176→256 (no activation), Linear 256→4096 + leaky ReLU,
    Dropout 0.5, Linear 4096→S·S·(5B+C). No batch norm. 45.1 M parameters, 4.84 GFLOP per image.
    """
    return reduced_fast_yolo(448, 1.0, S=S, B=B, C=C, seed=seed)


# The paper's Figure 3: (kernel, filters, stride) per convolution, "M" a 2×2 max-pool.
YOLO_V1_CONVS = (
    [(7, 64, 2), "M", (3, 192, 1), "M", (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), "M"]
    + [(1, 256, 1), (3, 512, 1)] * 4 + [(1, 512, 1), (3, 1024, 1), "M"]
    + [(1, 512, 1), (3, 1024, 1)] * 2 + [(3, 1024, 1), (3, 1024, 2), (3, 1024, 1), (3, 1024, 1)]
)


def yolo_v1(S: int = 7, B: int = 2, C: int = 20, seed: int = 0) -> YoloModel:
    """The paper's YOLO: 24 convolutions and 2 fully connected layers, 448×448 input."""
    rng = np.random.default_rng(seed)
    layers, c = [], 3
    for spec in YOLO_V1_CONVS:
        if spec == "M":
            layers.append(MaxPool2d(2, 2))
        else:
            k, f, s = spec
            c = _conv_block(layers, c, f, k, stride=s, rng=rng)
    trunk_length = len(layers)
    _head(layers, c * S * S, None, 4096, S, B, C, rng, seed)
    return YoloModel(layers, {"name": "yolo_v1", "kwargs": dict(S=S, B=B, C=C, seed=seed)}, 448, S, B, C,
                     trunk_length)


ARCHITECTURES = {"yolo_v1": yolo_v1, "fast_yolo": fast_yolo, "reduced_fast_yolo": reduced_fast_yolo}


def build(arch: dict) -> YoloModel:
    """Rebuild a model from its `arch` dict ({"name": ..., "kwargs": {...}})."""
    try:
        factory = ARCHITECTURES[arch["name"]]
    except (KeyError, TypeError):
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None
    return factory(**arch.get("kwargs", {}))
