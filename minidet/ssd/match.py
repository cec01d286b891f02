"""Matching default boxes to the truth, and the offsets the network regresses.

Frames: truths are corner boxes `[x1, y1, x2, y2]`, priors centre boxes `[cx, cy, w, h]`,
both normalized to [0, 1]. Labels are object classes in [0, C); in `conf_t` class 0 is
background and object class c is c + 1.

The rule (Liu et al. 2016, §2.2 "Matching strategy"; the order of the reference code):
1. each prior takes the truth with which it has the highest IoU (the first on ties);
2. each truth t, in index order, claims its own best prior (the first on ties), overriding
   what that prior had, so a truth always has at least one positive and a later truth
   wins a prior two truths both claim;
3. a prior is positive (conf_t = label + 1) when its IoU with its truth is ≥ threshold or
   it was claimed in step 2; otherwise background (0).

Offsets, with variances (v0, v1) = (0.1, 0.2) that scale them to about unit size:
    ((cx − p_cx) / (v0·p_w), (cy − p_cy) / (v0·p_h), log(w / p_w) / v1, log(h / p_h) / v1).
`decode_offsets` is the inverse.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..boxes import box_iou, centers_to_corners, corners_to_centers

VARIANCES = (0.1, 0.2)


def _check(truths, labels, priors):
    if getattr(truths, "ndim", None) != 2 or truths.shape[1] != 4:
        raise ValueError(f"match: truths must have shape (M, 4) (corner boxes), got {np.shape(truths)}")
    if getattr(labels, "ndim", None) != 1 or labels.shape[0] != truths.shape[0]:
        raise ValueError(f"match: labels must have shape ({truths.shape[0]},) to go with truths "
                         f"{tuple(truths.shape)}, got {np.shape(labels)}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"match: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"match: labels must be >= 0 (class indices), got {labels.tolist()}")
    if getattr(priors, "ndim", None) != 2 or priors.shape[1] != 4:
        raise ValueError(f"match: priors must have shape (A, 4) (centre boxes), got {np.shape(priors)}")
    for name, a in (("truths", truths), ("priors", priors)):
        if a.dtype.kind != "f":
            raise ValueError(f"match: {name} must be floating point, got dtype {a.dtype}")


def encode_offsets(matched, priors, variances=VARIANCES):
    """Offsets (A, 4) of centre boxes `matched` (A, 4) from `priors` (A, 4), as above."""
    xp = get_array_module(matched)
    v0, v1 = variances
    return xp.concatenate([(matched[:, :2] - priors[:, :2]) / (v0 * priors[:, 2:]),
                           xp.log(matched[:, 2:] / priors[:, 2:]) / v1], axis=1)


def decode_offsets(loc, priors, variances=VARIANCES):
    """Centre boxes from offsets: loc (..., A, 4), priors (A, 4) → (..., A, 4) `[cx, cy, w, h]`.

    The inverse of `encode_offsets`; NumPy or CuPy.
    """
    xp = get_array_module(loc)
    v0, v1 = variances
    priors = xp.asarray(priors, dtype=loc.dtype)
    return xp.concatenate([priors[:, :2] + loc[..., :2] * v0 * priors[:, 2:],
                           priors[:, 2:] * xp.exp(loc[..., 2:] * v1)], axis=-1)


def match(truths, labels, priors, threshold: float = 0.5, variances=VARIANCES):
    """Targets of one image: (loc_t (A, 4) float64, conf_t (A,) int64); see the module docstring.

    truths (M, 4) corner boxes, labels (M,) ints in [0, C), priors (A, 4) centre boxes.
    With M = 0 every prior is background and loc_t is 0. Background priors' loc_t holds the
    offsets to their best truth (the loss ignores them).
    """
    truths, labels, priors = np.asarray(truths), np.asarray(labels), np.asarray(priors)
    if truths.size == 0 and truths.ndim < 2:
        truths = truths.reshape(0, 4).astype(np.float64)
    _check(truths, labels, priors)
    a = priors.shape[0]
    if truths.shape[0] == 0:
        return np.zeros((a, 4)), np.zeros(a, dtype=np.int64)
    truths = truths.astype(np.float64)
    priors = priors.astype(np.float64)
    iou = box_iou(truths, centers_to_corners(priors))                 # (M, A)
    best_truth = np.argmax(iou, axis=0)                               # first on ties
    best_iou = iou[best_truth, np.arange(a)]
    positive = best_iou >= threshold
    for t, p in enumerate(np.argmax(iou, axis=1)):                    # in index order: later wins
        best_truth[p], positive[p] = t, True
    conf_t = np.where(positive, labels[best_truth].astype(np.int64) + 1, 0)
    matched = corners_to_centers(truths)[best_truth]
    # A degenerate truth (zero width after a crop) would give log(0): keep its offset finite.
    matched[:, 2:] = np.maximum(matched[:, 2:], 1e-6)
    loc_t = encode_offsets(matched, priors, variances)
    return loc_t, conf_t
