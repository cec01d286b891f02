"""Selective search (Uijlings et al., IJCV 2013), simplified: region proposals without a CNN.

Each strategy segments the image (Felzenszwalb–Huttenlocher with scale k, see segmentation.py)
and groups the segments hierarchically (grouping.py) with one set of similarities; every
region of every hierarchy is a proposal. The diversification here is over k and over two
similarity sets (colour + size + fill, and size + fill), in RGB only (the paper also varies
the colour space).

Ranking, as the paper's: within a hierarchy the region made last (the top) has position 1, the
one before it 2, and so on down to the initial segments; each proposal's priority is its
position times a random number in [0, 1) (so large regions tend to come first, yet small
ones are mixed in), proposals are sorted by priority across all strategies, and a box already
listed is dropped. The random numbers come from `seed`: the output is deterministic.
"""
from __future__ import annotations

import numpy as np

from .grouping import SIMILARITIES, group, initial_regions
from .segmentation import felzenszwalb

DEFAULT_KS = (50, 100, 200)
DEFAULT_STRATEGIES = (SIMILARITIES, ("size", "fill"))


def hierarchy_boxes(image, k: float, strategies=(SIMILARITIES,), sigma: float = 0.8, min_size: int = 20):
    """Every region box of one segmentation grouped with each similarity set in `strategies`:
    a list of (M, 4) float64 pixel-corner arrays [x1, y1, x2, y2], one per strategy, each with
    the initial segments first and the top of its hierarchy last."""
    image = np.asarray(image)
    labels = felzenszwalb(image, k=k, sigma=sigma, min_size=min_size)
    regions = initial_regions(image, labels)
    return [group(regions, float(labels.size), use)[0].box for use in strategies]


def selective_search(image, ks=DEFAULT_KS, strategies=DEFAULT_STRATEGIES, sigma: float = 0.8,
                     min_size: int = 20, seed: int = 0, max_proposals: int | None = None):
    """Ranked proposals for an (H, W, 3) uint8 RGB image (HWC).

    ks: the segmentation scales; strategies: the similarity sets (subsets of
    grouping.SIMILARITIES); sigma, min_size: the segmentation's smoothing and smallest segment.
    Returns (P, 4) float64 pixel corners [x1, y1, x2, y2] (continuous: the whole image is
    [0, 0, W, H]), best first, no box twice; at most `max_proposals` of them when given.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"selective_search: image must have shape (H, W, 3) RGB, got {image.shape}")
    rng = np.random.default_rng(seed)
    boxes, priority = [], []
    for k in ks:
        for b in hierarchy_boxes(image, k, strategies, sigma, min_size):
            position = np.arange(len(b), 0, -1)  # the top (made last) is 1
            boxes.append(b)
            priority.append(position * rng.random(len(b)))
    boxes, priority = np.concatenate(boxes), np.concatenate(priority)
    ranked = boxes[np.argsort(priority, kind="stable")]
    _, first = np.unique(ranked, axis=0, return_index=True)
    ranked = ranked[np.sort(first)]
    return ranked if max_proposals is None else ranked[:max_proposals]
