"""Graph-based image segmentation (Felzenszwalb & Huttenlocher, IJCV 2004).

The image is a graph: one node per pixel, an edge to each of its 8 neighbours weighted by
the Euclidean distance of their (Gaussian-smoothed) RGB colours. Edges are taken in order
of increasing weight; the edge (a, b) merges the components A ∋ a and B ∋ b when

    w(a, b) ≤ min(Int(A) + k / |A|, Int(B) + k / |B|),

Int(C) being the largest edge weight inside C's minimum spanning tree (the weight of the
edge that last merged it, as edges come in increasing order). k sets the scale: a larger
k prefers larger components. A last pass merges, in the same edge order, every component
smaller than `min_size` pixels into a neighbour.

Edges are sorted with a stable sort and ties broken by edge index, so the labels are a pure
function of the image and the settings. The union-find is a Numba loop (the per-edge work
is a few integer operations, ~100× a Python loop).
"""
from __future__ import annotations

import numpy as np
from numba import njit


def gaussian_smooth(image, sigma: float):
    """(H, W, 3) image -> (H, W, 3) float64, blurred by a separable Gaussian of std `sigma`
    pixels (edge pixels repeated at the border); sigma 0 returns a float copy."""
    img = np.asarray(image, dtype=np.float64)
    if sigma <= 0:
        return img.copy()
    radius = int(np.ceil(4 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        img = sum(kernel[i] * np.take(padded, np.arange(i, i + n), axis=axis) for i in range(len(kernel)))
    return img


def neighbour_edges(image):
    """The 8-neighbour grid graph of an (H, W, 3) float image: (a, b) int64 pixel indices
    (row-major, i·W + j) and float64 weights |colour(a) − colour(b)|, each edge once."""
    H, W = image.shape[:2]
    index = np.arange(H * W).reshape(H, W)
    a, b, w = [], [], []
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        i0, i1 = 0, H - di
        j0, j1 = max(0, -dj), W - max(0, dj)
        src = (slice(i0, i1), slice(j0, j1))
        dst = (slice(i0 + di, i1 + di), slice(j0 + dj, j1 + dj))
        a.append(index[src].ravel())
        b.append(index[dst].ravel())
        w.append(np.sqrt(((image[src] - image[dst]) ** 2).sum(axis=-1)).ravel())
    return np.concatenate(a), np.concatenate(b), np.concatenate(w)


@njit(cache=True, nogil=True)
def _find(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@njit(cache=True, nogil=True)
def _segment(n, a, b, w, order, k, min_size, labels):
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    internal = np.zeros(n)  # Int(C) of each root
    for e in order:
        ra, rb = _find(parent, a[e]), _find(parent, b[e])
        if ra == rb:
            continue
        if w[e] <= min(internal[ra] + k / size[ra], internal[rb] + k / size[rb]):
            # The smaller index becomes the root: the result does not depend on a tie-break rule.
            lo, hi = min(ra, rb), max(ra, rb)
            parent[hi] = lo
            size[lo] += size[hi]
            internal[lo] = w[e]
    for e in order:
        ra, rb = _find(parent, a[e]), _find(parent, b[e])
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            lo, hi = min(ra, rb), max(ra, rb)
            parent[hi] = lo
            size[lo] += size[hi]
    # Consecutive labels in order of each component's first pixel (row-major).
    nxt = 0
    root_label = np.full(n, -1, dtype=np.int64)
    for p in range(n):
        r = _find(parent, p)
        if root_label[r] < 0:
            root_label[r] = nxt
            nxt += 1
        labels[p] = root_label[r]
    return nxt


def felzenszwalb(image, k: float = 100.0, sigma: float = 0.8, min_size: int = 20):
    """Segment an (H, W, 3) RGB image (uint8 0–255 or float on the same scale).

    k: the scale (in colour-distance units times pixels); sigma: the pre-smoothing, pixels;
    min_size: the smallest component kept, pixels.
    Returns labels (H, W) int64, components numbered 0 … K − 1 in the row-major order of their
    first pixel.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"felzenszwalb: image must have shape (H, W, 3), got {image.shape}")
    if k < 0 or sigma < 0 or min_size < 1:
        raise ValueError(f"felzenszwalb: need k >= 0, sigma >= 0, min_size >= 1; got k={k}, sigma={sigma}, "
                         f"min_size={min_size}")
    H, W = image.shape[:2]
    a, b, w = neighbour_edges(gaussian_smooth(image, sigma))
    order = np.argsort(w, kind="stable")
    labels = np.empty(H * W, dtype=np.int64)
    _segment(H * W, a, b, w, order, float(k), int(min_size), labels)
    return labels.reshape(H, W)
