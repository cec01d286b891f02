"""Hierarchical grouping (Uijlings et al., IJCV 2013, section 3.1): from a segmentation to a
hierarchy of regions, by repeatedly merging the two most similar neighbouring regions.

A region holds its size (pixels), its box (pixel corners [x1, y1, x2, y2], continuous: a
region of columns 3…5 spans x 3 to 6) and its colour histogram (25 bins per RGB channel, 75
values summing to 1). Similarities, each in [0, 1], summed over the ones chosen:
- colour: Σ min(hist_a, hist_b), the histograms' intersection;
- size:   1 − (size_a + size_b) / image size: small regions merge first, everywhere at once;
- fill:   1 − (area of the box around both − size_a − size_b) / image size: regions whose
          union fills its box merge before regions that only touch by a corner.
A merged region's histogram is the size-weighted mean of its parts', so it equals the
histogram of its pixels. Neighbours are regions with 8-connected pixels in common.
Ties in similarity go to the pair with the smallest indices: the hierarchy is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 25
SIMILARITIES = ("colour", "size", "fill")


@dataclass
class Regions:
    """R regions: size (R,) float64 pixels, box (R, 4) float64 pixel corners, hist (R, 75),
    and the set of neighbour indices of each."""

    size: np.ndarray
    box: np.ndarray
    hist: np.ndarray
    neighbours: list


def initial_regions(image, labels) -> Regions:
    """The regions of a segmentation: image (H, W, 3) uint8 RGB, labels (H, W) 0 … K − 1."""
    H, W = labels.shape
    K = int(labels.max()) + 1
    flat = labels.ravel()
    size = np.bincount(flat, minlength=K).astype(np.float64)
    rows, cols = np.divmod(np.arange(H * W), W)
    box = np.empty((K, 4))
    box[:, 0] = np.full(K, W, dtype=float)
    box[:, 1] = np.full(K, H, dtype=float)
    box[:, 2:] = 0
    np.minimum.at(box[:, 0], flat, cols)
    np.minimum.at(box[:, 1], flat, rows)
    np.maximum.at(box[:, 2], flat, cols + 1)
    np.maximum.at(box[:, 3], flat, rows + 1)
    bins = np.minimum(np.asarray(image, dtype=np.int64).reshape(-1, 3) * BINS // 256, BINS - 1)
    hist = np.zeros((K, 3 * BINS))
    for ch in range(3):
        hist[:, ch * BINS:(ch + 1) * BINS] = np.bincount(flat * BINS + bins[:, ch], minlength=K * BINS).reshape(K, BINS)
    hist /= np.maximum(hist.sum(axis=1, keepdims=True), 1)  # an empty label keeps a zero histogram
    neighbours = [set() for _ in range(K)]
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :]),
                 (labels[:-1, :-1], labels[1:, 1:]), (labels[:-1, 1:], labels[1:, :-1])):
        a, b = a.ravel(), b.ravel()
        differ = a != b
        for code in np.unique(a[differ] * K + b[differ]).tolist():  # one integer per pair: a fast unique
            i, j = divmod(code, K)
            neighbours[i].add(j)
            neighbours[j].add(i)
    return Regions(size, box, hist, neighbours)


def similarity(regions: Regions, a: int, b: int, image_size: float, use=SIMILARITIES) -> float:
    """The summed similarities `use` of regions a and b (each term in [0, 1])."""
    s = 0.0
    if "colour" in use:
        s += float(np.minimum(regions.hist[a], regions.hist[b]).sum())
    if "size" in use:
        s += 1.0 - (regions.size[a] + regions.size[b]) / image_size
    if "fill" in use:
        ba, bb = regions.box[a], regions.box[b]
        union = (max(ba[2], bb[2]) - min(ba[0], bb[0])) * (max(ba[3], bb[3]) - min(ba[1], bb[1]))
        s += 1.0 - (union - regions.size[a] - regions.size[b]) / image_size
    return s


def group(regions: Regions, image_size: float, use=SIMILARITIES):
    """Merge the most similar neighbours until one region is left (per connected group).

    Returns (Regions of every region, the K initial ones first and then each merged one in the
    order made (their neighbour sets are spent); merges (M − K, 2) int64, the two regions each
    merged). The last region made is the top of the hierarchy.
    """
    bad = [u for u in use if u not in SIMILARITIES]
    if bad or not use:
        raise ValueError(f"group: similarities must be a non-empty subset of {SIMILARITIES}, got {use!r}")
    K = len(regions.size)
    M = max(2 * K - 1, K)
    work = Regions(np.zeros(M), np.zeros((M, 4)), np.zeros((M, 3 * BINS)),
                   [set(n) for n in regions.neighbours] + [set() for _ in range(M - K)])
    work.size[:K], work.box[:K], work.hist[:K] = regions.size, regions.box, regions.hist
    size, box, hist, neighbours = work.size, work.box, work.hist, work.neighbours
    sims = {(a, b): similarity(work, a, b, image_size, use) for a in range(K) for b in neighbours[a] if a < b}
    merges = []
    t = K
    while sims:
        a, b = max(sims, key=lambda p: (sims[p], -p[0], -p[1]))
        size[t] = size[a] + size[b]
        box[t, :2] = np.minimum(box[a, :2], box[b, :2])
        box[t, 2:] = np.maximum(box[a, 2:], box[b, 2:])
        hist[t] = (size[a] * hist[a] + size[b] * hist[b]) / size[t]
        merges.append((a, b))
        new_neighbours = (neighbours[a] | neighbours[b]) - {a, b}
        for r in (a, b):
            for n in neighbours[r]:
                sims.pop((min(r, n), max(r, n)), None)
                neighbours[n].discard(r)
        neighbours[t] = new_neighbours
        for n in sorted(new_neighbours):
            neighbours[n].add(t)
            sims[(n, t)] = similarity(work, n, t, image_size, use)
        t += 1
    made = Regions(size[:t].copy(), box[:t].copy(), hist[:t].copy(), neighbours[:t])
    return made, np.asarray(merges, dtype=np.int64).reshape(-1, 2)
