"""Sliding-window detection: the detector before one-shot detectors (chapter 0 of the course).

A classifier looks at one square window at a time; a detector is that classifier run over
every window at several scales and positions. Overfeat (Sermanet et al. 2014) added a box
regressor beside the classifier and merged the regressed boxes (`minidet.boxes.greedy_merge`).

Frames. Boxes are normalized corners `[x1, y1, x2, y2]` (see `minidet.boxes`). Images are
(H, W, 3) uint8 RGB (HWC), as `VOCDataset` gives them; crops are (K, 3, size, size) float32
in [0, 1] (NCHW), as the layers take them. A box "in the window frame" is the box with the
window mapped to [0, 1]²: `[0, 0, 1, 1]` is the window itself.

The window classifier's output (N, C + 1 + 4) holds C + 1 class logits (the last one is
"background") and then the 4 corners of the object's box in the window frame.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .boxes import box_iou
from .data.crop import crop_resize
from .cross_entropy import softmax, softmax_cross_entropy  # noqa: F401  (softmax: classify_windows, tests)
from .layers import Sequential
from .models.crop_cnn import crop_cnn
from .models.summary import layer_flops


# -- windows ---------------------------------------------------------------------------

def window_sizes(smallest: int, largest: int, scales: int) -> list[int]:
    """`scales` window sides in pixels, geometric from `smallest` to `largest` (rounded)."""
    if scales < 1 or smallest < 1 or largest < smallest:
        raise ValueError(f"window_sizes: need scales >= 1 and 1 <= smallest <= largest, "
                         f"got {scales}, {smallest}, {largest}")
    if scales == 1:
        return [int(smallest)]
    return [int(round(s)) for s in np.geomspace(smallest, largest, scales)]


def _starts(image_size: int, window: int, stride: int) -> np.ndarray:
    """Pixel offsets of the windows along one axis: 0, s, 2s, ... (as a convolution's output)."""
    return np.arange((image_size - window) // stride + 1) * stride


def _stride(window: int, stride_fraction: float) -> int:
    return max(1, int(round(window * stride_fraction)))


def sliding_windows(image_size: int, sizes, stride_fraction: float = 0.25) -> np.ndarray:
    """Every square window of each side in `sizes` (pixels) over an image_size² image.

    A window of side w steps by round(w · stride_fraction) pixels (at least 1), from the
    top-left corner, as a convolution does: (image_size − w) // stride + 1 positions per
    axis. Windows larger than the image are skipped. Returns (K, 4) float64 normalized corners.
    """
    out = []
    for w in sizes:
        if w > image_size:
            continue
        s = _starts(image_size, w, _stride(w, stride_fraction))
        y0, x0 = np.meshgrid(s, s, indexing="ij")
        x0, y0 = x0.ravel(), y0.ravel()
        out.append(np.stack([x0, y0, x0 + w, y0 + w], axis=1) / image_size)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 4))


def count_windows(image_size: int, sizes, stride_fraction: float = 0.25) -> int:
    """len(sliding_windows(...)), in closed form: Σ_w ((image_size − w) // stride_w + 1)²."""
    return int(sum(len(_starts(image_size, w, _stride(w, stride_fraction))) ** 2
                   for w in sizes if w <= image_size))


def best_window_iou(windows, truths) -> np.ndarray:
    """For each truth box (M, 4), the highest IoU any of `windows` (K, 4) reaches: (M,).

    The best a detector that outputs its windows unchanged can do: a truth whose best
    window has IoU below 0.5 is missed however good the classifier is.
    """
    truths = np.asarray(truths, dtype=np.float64).reshape(-1, 4)
    if len(windows) == 0:
        return np.zeros(len(truths))
    return box_iou(np.asarray(windows, dtype=np.float64), truths).max(axis=0)


# -- crops -------------------------------------------------------------------------------

def to_window_frame(boxes, windows) -> np.ndarray:
    """Boxes (K, 4) normalized → the same boxes in the frame of their windows (K, 4)."""
    b, w = np.asarray(boxes, dtype=np.float64), np.asarray(windows, dtype=np.float64)
    scale = np.concatenate([w[:, 2:] - w[:, :2]] * 2, axis=1)
    return (b - np.concatenate([w[:, :2]] * 2, axis=1)) / scale


def from_window_frame(rel, windows) -> np.ndarray:
    """The inverse of `to_window_frame`: boxes in their windows' frames → normalized boxes."""
    r, w = np.asarray(rel, dtype=np.float64), np.asarray(windows, dtype=np.float64)
    scale = np.concatenate([w[:, 2:] - w[:, :2]] * 2, axis=1)
    return r * scale + np.concatenate([w[:, :2]] * 2, axis=1)


class Crops(NamedTuple):
    """Labelled windows cut from a dataset, for training a window classifier.

    images: (K, 3, size, size) float32 in [0, 1]. labels: (K,) int64, C for background.
    boxes: (K, 4) float32, the object's box in the window frame (zeros for background).
    windows: (K, 4) normalized corners in the source image. source: (K,) its image index.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    windows: np.ndarray
    source: np.ndarray


def _centred(cx, cy, w, h):
    """The corners of the w × h box centred at (cx, cy)."""
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def labelled_crops(dataset, indices, size: int, rng: np.random.Generator, per_object: int = 2,
                   backgrounds: int = 2, pos_iou: float = 0.5, neg_iou: float = 0.3,
                   side_range=(0.08, 0.8), square: bool = True) -> Crops:
    """Positive and background windows from the images `indices` of a VOCDataset, as R-CNN samples.

    Positives: per object, `per_object` square windows around it (side 0.8–1.4 × the
    object's longer side, centre moved by up to 20 % of the side) with IoU ≥ `pos_iou`
    against it, labelled with its class; the tight square is used if 20 draws all miss.
    Backgrounds: per image, `backgrounds` square windows (side log-uniform in `side_range`
    of the image) whose IoU with every object is below `neg_iou`, labelled C = len(classes).
    Square windows match what `sliding_windows` shows the classifier at test time.
    square=False: each object window has the object's own aspect ratio instead (its width and
    height scaled by the same jittered factor), so `crop_resize` warps it to size × size as
    R-CNN warps a proposal; the random draws are the same, backgrounds stay square.
    """
    C = len(dataset.classes)
    images, labels, boxes, windows, source = [], [], [], [], []
    for idx in indices:
        sample = dataset[int(idx)]
        chosen, lab, rel = [], [], []
        for box, label in zip(sample.boxes.astype(np.float64), sample.labels):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            longest = max(box[2] - box[0], box[3] - box[1])
            # The window's (width, height) at scale 1: the longer side twice, or the box's own.
            shape = np.array([longest, longest]) if square else np.maximum(box[2:] - box[:2], 1e-6)
            for _ in range(per_object):
                for _attempt in range(20):
                    wh = shape * np.exp(rng.uniform(np.log(0.8), np.log(1.4)))
                    dx, dy = rng.uniform(-0.2, 0.2, size=2) * wh
                    win = _centred(cx + dx, cy + dy, *wh)
                    if box_iou(win[None], box[None])[0, 0] >= pos_iou:
                        break
                else:
                    win = _centred(cx, cy, *shape)
                chosen.append(win)
                lab.append(int(label))
                rel.append(to_window_frame(box[None], win[None])[0])
        for _ in range(backgrounds):
            for _attempt in range(50):
                side = np.exp(rng.uniform(*np.log(side_range)))
                x0, y0 = rng.uniform(0, 1 - side, size=2)
                win = np.array([x0, y0, x0 + side, y0 + side])
                if len(sample.boxes) == 0 or box_iou(win[None], sample.boxes).max() < neg_iou:
                    chosen.append(win)
                    lab.append(C)
                    rel.append(np.zeros(4))
                    break
        if chosen:
            chosen = np.asarray(chosen)
            images.append(crop_resize(sample.image, chosen, size))
            windows.append(chosen)
            labels += lab
            boxes += rel
            source += [int(idx)] * len(chosen)
    return Crops(np.concatenate(images), np.asarray(labels, dtype=np.int64),
                 np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                 np.concatenate(windows), np.asarray(source, dtype=np.int64))


# -- the classifier ------------------------------------------------------------------------

def window_classifier(num_classes: int, size: int = 24, width: int = 16, rng=None) -> Sequential:
    """A small CNN: three (3×3 conv, leaky ReLU, 2×2 max-pool) blocks of width, 2·width,
    4·width filters, then Linear to C + 1 class logits and 4 box corners (window frame).

    Input (N, 3, size, size) with size divisible by 8 → output (N, C + 1 + 4).
    """
    return crop_cnn(num_classes + 1 + 4, size, width, rng, where="window_classifier")


def flops_per_window(model: Sequential, size: int) -> int:
    """Forward FLOPs of `model` on one size × size crop (convolutions and Linear layers)."""
    shape, total = (1, 3, size, size), 0
    for layer in model:
        out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        total += layer_flops(layer, shape, out)
        shape = out
    return total


class WindowLoss:
    """Softmax cross-entropy on the C + 1 class logits, plus λbox × the squared error of the
    4 box corners (window frame) on the windows that hold an object; both summed, then
    divided by N. `forward(out, labels, boxes) -> float`, `backward() -> dout` (N, C + 5);
    `components` = {"cls": ..., "box": ...} after forward.
    """

    def __init__(self, num_classes: int, lambda_box: float = 1.0):
        self.C, self.lambda_box = int(num_classes), float(lambda_box)
        self.components: dict = {}
        self._cache = None

    def forward(self, out, labels, boxes) -> float:
        C = self.C
        if out.ndim != 2 or out.shape[1] != C + 5:
            raise ValueError(f"WindowLoss: out must have shape (N, {C + 5}), got {out.shape}")
        n = out.shape[0]
        logits, pred = out[:, :C + 1], out[:, C + 1:]
        total, dlogits, _ = softmax_cross_entropy(logits, labels)
        cls = total / n
        obj = (labels < C)[:, None]
        diff = (pred - boxes) * obj
        box = self.lambda_box * float((diff ** 2).sum()) / n
        self.components = {"cls": cls, "box": box}
        self._cache = (dlogits, diff, n)
        return cls + box

    def backward(self):
        dlogits, diff, n = self._cache
        return np.concatenate([dlogits / n, 2 * self.lambda_box * diff / n], axis=1).astype(dlogits.dtype)


# -- detection -------------------------------------------------------------------------------

class WindowDetections(NamedTuple):
    """Windows the classifier calls an object: windows and regressed boxes (K, 4) normalized,
    scores (K,) (the softmax probability of the class), labels (K,) int64."""

    windows: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def classify_windows(model, image, windows, size: int, score_threshold: float = 0.5,
                     batch_size: int = 512) -> WindowDetections:
    """Run the window classifier on every window of one image (H, W, 3) uint8.

    A window is kept when its most probable class is not background and that probability
    is above `score_threshold`. Its regressed box is the predicted window-frame box mapped
    back to the image (clipped to [0, 1]).
    """
    model.eval()
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 4)
    outs = [model.forward(crop_resize(image, windows[i:i + batch_size], size))
            for i in range(0, len(windows), batch_size)]
    out = np.concatenate(outs) if outs else np.zeros((0, 0))
    C = out.shape[1] - 5 if outs else 0
    p = softmax(out[:, :C + 1].astype(np.float64)) if outs else np.zeros((0, 1))
    labels = p.argmax(axis=1)
    scores = p[np.arange(len(p)), labels]
    keep = (labels < C) & (scores > score_threshold)
    boxes = np.clip(from_window_frame(out[keep, C + 1:], windows[keep]), 0.0, 1.0) if outs else windows
    return WindowDetections(windows[keep], boxes, scores[keep], labels[keep].astype(np.int64))


def per_class(boxes, scores, labels, reduce):
    """Apply `reduce(boxes, scores) -> (boxes, scores)` to each class's boxes separately
    (e.g. `lambda b, s: greedy_merge(b, s, 0.3)`); returns (boxes, scores, labels) by descending score."""
    out_b, out_s, out_l = [np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0, np.int64)]
    for c in np.unique(labels):
        b, s = reduce(np.asarray(boxes)[labels == c], np.asarray(scores)[labels == c])
        out_b.append(np.asarray(b).reshape(-1, 4))
        out_s.append(np.asarray(s))
        out_l.append(np.full(len(s), c, dtype=np.int64))
    b, s, lab = np.concatenate(out_b), np.concatenate(out_s), np.concatenate(out_l)
    order = np.argsort(-s, kind="stable")
    return b[order], s[order], lab[order]
