"""The region proposal network's loss (Ren et al. 2015, equation 1, in torchvision's form), with
its backward, and the layout that ties the RPN head's maps to the anchor rows.

Layout. The head gives objectness logits (N, A, h, w) and deltas (N, 4·A, h, w), channel
4a + k holding delta k of anchor a (NCHW). `rpn_rows` puts them in anchor-row order (i, j, a),
`anchor_grid`'s: logits (N, h·w·A) and deltas (N, h·w·A, 4); `rpn_maps` is its inverse, for
the gradients.

Loss, over the anchors `rpn_targets` sampled in all N images (labels 1 or 0; −1 is ignored),
S of them:

    L = (1/S) Σ_sampled BCE(σ(logit), label)  +  λ·(1/S) Σ_positive Σ_k smoothL1_β(delta_k − target_k)

with binary cross-entropy on a sigmoid (one logit per anchor rather than the paper's two-way
softmax; the two are equivalent in what they can express).
"""
from __future__ import annotations

import numpy as np

from .box_loss import BoxLoss, smooth_l1, smooth_l1_grad


def rpn_rows(logits, deltas):
    """(N, A, h, w), (N, 4A, h, w) -> (N, h·w·A), (N, h·w·A, 4) in anchor-row order (i, j, a)."""
    N, A, h, w = logits.shape
    if deltas.shape != (N, 4 * A, h, w):
        raise ValueError(f"rpn_rows: deltas must have shape {(N, 4 * A, h, w)} for logits {logits.shape}, "
                         f"got {deltas.shape}")
    rows = logits.transpose(0, 2, 3, 1).reshape(N, h * w * A)
    d = deltas.reshape(N, A, 4, h, w).transpose(0, 3, 4, 1, 2).reshape(N, h * w * A, 4)
    return rows, d


def rpn_maps(drows, ddeltas, A: int, h: int, w: int):
    """The inverse of `rpn_rows`: (N, h·w·A), (N, h·w·A, 4) -> (N, A, h, w), (N, 4A, h, w)."""
    N = drows.shape[0]
    logits = drows.reshape(N, h, w, A).transpose(0, 3, 1, 2)
    deltas = ddeltas.reshape(N, h, w, A, 4).transpose(0, 3, 4, 1, 2).reshape(N, 4 * A, h, w)
    return np.ascontiguousarray(logits), np.ascontiguousarray(deltas)


class RpnLoss(BoxLoss):
    """RpnLoss(box_weight=1.0, beta=1/9): `forward(logits (N, K), deltas (N, K, 4), labels (N, K),
    targets (N, K, 4)) -> float`, `backward() -> (dlogits, ddeltas)`; `parts` after forward."""

    def __init__(self, box_weight: float = 1.0, beta: float = 1 / 9):
        super().__init__(box_weight, beta)

    def forward(self, logits, deltas, labels, targets) -> float:
        logits, deltas = np.asarray(logits), np.asarray(deltas)
        labels, targets = np.asarray(labels), np.asarray(targets)
        if logits.ndim != 2 or labels.shape != logits.shape or deltas.shape != logits.shape + (4,) \
                or targets.shape != deltas.shape:
            raise ValueError(f"RpnLoss: expected logits (N, K), deltas (N, K, 4), labels (N, K), targets (N, K, 4); "
                             f"got {logits.shape}, {deltas.shape}, {labels.shape}, {targets.shape}")
        sampled, positive = labels >= 0, labels == 1
        S = max(int(sampled.sum()), 1)
        y = positive.astype(logits.dtype)
        # BCE with logits, stably: max(z, 0) − z·y + log(1 + exp(−|z|)).
        bce = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
        cls = float((bce * sampled).sum()) / S
        d = (deltas - targets) * positive[..., None]
        value, small = smooth_l1(d, self.beta)
        box = float(value[positive].sum()) / S
        self._cache = (logits, y, sampled, positive, d, small, S)
        self.parts = {"objectness": cls, "box": self.box_weight * box}
        return cls + self.box_weight * box

    def backward(self):
        """(dlogits (N, K), ddeltas (N, K, 4)) of the last forward's loss."""
        logits, y, sampled, positive, d, small, S = self._cached()
        dlogits = (1 / (1 + np.exp(-logits)) - y) * sampled / S
        ddeltas = self.box_weight * smooth_l1_grad(d, small, self.beta) * positive[..., None] / S
        return dlogits, ddeltas
