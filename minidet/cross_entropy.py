"""Softmax and softmax cross-entropy: the one implementation every classifier loss uses
(cell classification in `pretrain`, the window classifier in `sliding`, Fast R-CNN's
`rcnn.loss.MultiTaskLoss`).

Classes lie on the LAST axis: logits (..., K), labels (...) integer class indices in [0, K).
Computed stably: the maximum of each row is subtracted before exp, so logits of 1000 do
not overflow. Works on NumPy and CuPy arrays alike (the array module of `logits`).
"""
from __future__ import annotations

from .backend import get_array_module


def softmax(logits):
    """softmax over the last axis of logits (..., K): exp(z − max z) / Σ exp(z − max z)."""
    xp = get_array_module(logits)
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, labels, weight=None):
    """The summed cross-entropy of softmax(logits) against `labels`, with its gradient.

    logits (..., K) float; labels (...) int in [0, K); weight (...) or None (1 each): a row
    of weight 0 adds nothing and gets no gradient (cells without an object, say).
    Returns (loss, dlogits, p):
        loss    = −Σ weight · log softmax(logits)[label], a float, NOT divided by anything;
        dlogits = weight · (softmax(logits) − onehot(label)), logits' shape: d loss / d logits;
        p       = softmax(logits) (..., K).
    """
    xp = get_array_module(logits)
    labels = xp.asarray(labels).astype(xp.int64, copy=False)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"softmax_cross_entropy: labels must have shape {tuple(logits.shape[:-1])} to match "
                         f"logits {tuple(logits.shape)}; got {tuple(labels.shape)}")
    z = logits - logits.max(axis=-1, keepdims=True)
    e = xp.exp(z)
    total = e.sum(axis=-1, keepdims=True)
    p, log_p = e / total, z - xp.log(total)
    picked = xp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    grad = p - (xp.arange(logits.shape[-1]) == labels[..., None])
    if weight is None:
        return -float(picked.sum()), grad, p
    weight = xp.asarray(weight).astype(logits.dtype, copy=False)
    return -float((weight * picked).sum()), weight[..., None] * grad, p
