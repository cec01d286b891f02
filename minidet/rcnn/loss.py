"""The multi-task loss of the second stage (Fast R-CNN, Girshick 2015, equation 1), with its backward.

For R sampled RoIs with labels u (0 = background, c + 1 = class c) and regression targets v:

    L = (1/R) Σ_r [ −log softmax(logits_r)[u_r]  +  λ·[u_r ≥ 1]·Σ_k smoothL1(box_r,u_r,k − v_r,k) ]

    smoothL1(d) = 0.5·d²/β  if |d| < β,  |d| − 0.5·β otherwise   (β = 1 in the paper)

Layouts: logits (R, C + 1); box (R, 4·(C + 1)), the four deltas of class u in columns
4u … 4u + 3 (the background block exists and gets no gradient: the regression is class-specific,
only the true class's deltas are trained); labels (R,) int; targets (R, 4) deltas (rows of
background RoIs are ignored). Both terms are divided by R, the number of sampled RoIs (not
by the foreground count), so a batch with few positives does not inflate the box term.
"""
from __future__ import annotations

import numpy as np

from ..cross_entropy import softmax_cross_entropy
from .box_loss import BoxLoss, smooth_l1, smooth_l1_grad


def _check(logits, box, labels, targets):
    R, K = logits.shape if logits.ndim == 2 else (None, None)
    if R is None or box.shape != (R, 4 * K) or labels.shape != (R,) or targets.shape != (R, 4):
        raise ValueError(f"MultiTaskLoss: expected logits (R, C + 1), box (R, 4·(C + 1)), labels (R,), targets "
                         f"(R, 4); got {logits.shape}, {box.shape}, {labels.shape}, {targets.shape}")
    if R and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"MultiTaskLoss: labels must lie in [0, {K}), got {labels.min()} … {labels.max()}")


class MultiTaskLoss(BoxLoss):
    """MultiTaskLoss(box_weight=1.0, beta=1.0): `forward(logits, box, labels, targets) -> float`,
    then `backward() -> (dlogits, dbox)`; `parts` holds the two terms of the last forward."""

    def forward(self, logits, box, labels, targets) -> float:
        logits, box = np.asarray(logits), np.asarray(box)
        labels, targets = np.asarray(labels, dtype=np.int64), np.asarray(targets)
        _check(logits, box, labels, targets)
        R, K = logits.shape
        total, dlogits, _ = softmax_cross_entropy(logits, labels)
        cls = total / max(R, 1)
        fg = np.flatnonzero(labels > 0)
        d = box.reshape(R, K, 4)[fg, labels[fg]] - targets[fg]
        value, small = smooth_l1(d, self.beta)
        loc = value.sum() / max(R, 1)
        self._cache = (dlogits / max(R, 1), labels, fg, d, small, box.shape)
        self.parts = {"cls": float(cls), "box": float(self.box_weight * loc)}
        return float(cls + self.box_weight * loc)

    def backward(self):
        """(dlogits (R, C + 1), dbox (R, 4·(C + 1))) of the last forward's loss."""
        dlogits, labels, fg, d, small, box_shape = self._cached()
        R, K = dlogits.shape
        dbox = np.zeros((R, K, 4), dtype=dlogits.dtype)
        dbox[fg, labels[fg]] = self.box_weight * smooth_l1_grad(d, small, self.beta) / max(R, 1)
        return dlogits, dbox.reshape(box_shape)
