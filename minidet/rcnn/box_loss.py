"""What the two losses of the two-stage detectors share (`loss.MultiTaskLoss`, `rpn_loss.RpnLoss`):
a classification term plus `box_weight` × the smooth L1 of their box deltas,

    smoothL1_β(d) = 0.5·d²/β  if |d| < β,  |d| − 0.5·β otherwise,   d/dd = d/β or sign(d),

elementwise on the differences d (any shape) between predicted and target deltas.
"""
from __future__ import annotations

import numpy as np


def smooth_l1(d, beta: float):
    """smoothL1_β of each element of d, and `small` (|d| < β, for `smooth_l1_grad`)."""
    small = np.abs(d) < beta
    return np.where(small, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta), small


def smooth_l1_grad(d, small, beta: float):
    """d smoothL1_β / dd, elementwise, with `small` from `smooth_l1`."""
    return np.where(small, d / beta, np.sign(d))


class BoxLoss:
    """Base of the losses above: `box_weight`, `beta` (checked positive), `parts` after forward,
    and the cache a backward reads (a RuntimeError naming the loss before any forward)."""

    def __init__(self, box_weight: float = 1.0, beta: float = 1.0):
        if beta <= 0:
            raise ValueError(f"{type(self).__name__}: beta must be positive, got {beta}")
        self.box_weight, self.beta = float(box_weight), float(beta)
        self._cache = None
        self.parts = {}

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        return self._cache
