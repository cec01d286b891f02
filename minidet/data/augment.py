"""The paper's data augmentation, boxes transformed with the pixels, and the plain resize.

Images come in as (H, W, 3) uint8 RGB (HWC) and go out as (3, size, size) float32 in
[0, 1] (CHW), stretched to the network's square input as darknet does (no letterbox).
Boxes are normalized corner boxes [x1, y1, x2, y2] (K, 4); since they are normalized,
the stretch leaves them unchanged and only the random affine moves them.

`augment` (section 2.2 of the paper, plus darknet's flip):
  1. random scaling by s ∈ [1 − 0.2, 1 + 0.2] about the centre and translation by up to
     ±20 % of the image size on each axis, one scale for both axes (aspect kept);
  2. horizontal flip with probability 0.5;
  3. exposure (V) and saturation (S) each scaled by a factor in [1/1.5, 1.5]
     (log-symmetric, as darknet's `rand_scale`), clipped to [0, 1] in HSV.
Areas uncovered by a shrink or shift are filled with mid-grey. In normalized
coordinates the affine maps u → a·u + b per axis, so a box maps exactly.

A transformed box is clipped to the image and dropped when it keeps less than
`min_visible` (20 %) of its area, or when it is thinner than `min_side_px` (2 pixels of
the output) on either axis: an object mostly pushed out is not a target to learn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

FILL = (127, 127, 127)


@dataclass(frozen=True)
class AugmentConfig:
    """The strength of each augmentation; `AugmentConfig()` is the paper's."""

    scale: float = 0.2  # s in [1 - scale, 1 + scale]
    translate: float = 0.2  # shift up to this fraction of the image, each axis
    flip: float = 0.5  # probability of a horizontal flip
    exposure: float = 1.5  # V scaled by a factor in [1/exposure, exposure]
    saturation: float = 1.5  # S scaled by a factor in [1/saturation, saturation]
    min_visible: float = 0.2  # drop a box keeping less than this of its area
    min_side_px: float = 2.0  # drop a box thinner than this many output pixels
    # SSD's "zoom out" (the image shrunk onto a larger canvas of FILL) and "zoom in" (a crop
    # of it enlarged): with probability zoom_p the scale is drawn log-uniformly in
    # [1 / zoom_out, zoom_in] instead, and the shift anywhere the image still covers the
    # output (zoom in) or lies inside it (zoom out). Off by default (the YOLO paper's set), and
    # off for `minidet train --model ssd` too: with zoom_p 0.5, zoom_out 2, zoom_in 1.5 the default
    # 20-epoch SSD run on the built-in dataset reached test mAP@0.5 0.842 against 0.861 without,
    # lower in every size band (the harder images did not pay within 20 epochs).
    zoom_p: float = 0.0
    zoom_out: float = 1.0
    zoom_in: float = 1.0


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (3, size, size) float32 in [0, 1]; normalized boxes are unchanged."""
    return to_chw(_resize_pil(image, size))


def augment(image: np.ndarray, boxes: np.ndarray, size: int, rng: np.random.Generator,
            config: AugmentConfig = AugmentConfig()):
    """Randomly scale, shift, flip and recolour one image, moving its boxes along (and, if
    `config.zoom_p`, zoom out or in as SSD does).

    image: (H, W, 3) uint8 RGB. boxes: (K, 4) normalized corner boxes. size: the output
    side in pixels. rng: the only source of randomness (same generator state, same result).
    Returns (image (3, size, size) float32 in [0, 1], boxes (K', 4) float32, keep (K,) bool)
    where keep marks the input boxes that survived (use it on labels, difficult, ...).
    """
    if config.zoom_p and rng.random() < config.zoom_p:   # no draw without zoom: the same stream
        s = float(np.exp(rng.uniform(-np.log(config.zoom_out), np.log(config.zoom_in))))
        tx, ty = rng.uniform(-abs(1 - s) / 2, abs(1 - s) / 2, size=2)
    else:
        s = rng.uniform(1 - config.scale, 1 + config.scale)
        tx, ty = rng.uniform(-config.translate, config.translate, size=2)
    flip = rng.random() < config.flip
    sat = _rand_scale(rng, config.saturation)
    exp = _rand_scale(rng, config.exposure)

    # u → a·u + b per axis (normalized): scale about the centre, shift, then maybe mirror.
    ax, bx = s, 0.5 - 0.5 * s + tx
    ay, by = s, 0.5 - 0.5 * s + ty
    if flip:
        ax, bx = -ax, 1 - bx
    # PIL wants the inverse map, output pixel → input pixel. Its affine warp samples
    # without low-pass filtering, so an image more than twice the output is first shrunk
    # with Pillow's (antialiased) resize; a smaller one is warped in one step.
    if max(image.shape[:2]) > 2 * size:
        image = _resize_pil(image, size)
    h, w = image.shape[:2]
    warped = Image.fromarray(image).transform(
        (size, size), Image.AFFINE, (w / (size * ax), 0, -w * bx / ax, 0, h / (size * ay), -h * by / ay),
        resample=Image.BILINEAR, fillcolor=FILL,
    )
    out = hsv_scale(to_chw(np.asarray(warped)), sat, exp)
    new_boxes, keep = transform_boxes(boxes, ax, bx, ay, by, size, config)
    return out, new_boxes, keep


def transform_boxes(boxes: np.ndarray, ax: float, bx: float, ay: float, by: float, size: int,
                    config: AugmentConfig = AugmentConfig()):
    """Map normalized boxes (K, 4) by x → ax·x + bx, y → ay·y + by; clip; drop the lost ones.

    Returns (boxes (K', 4) float32, keep (K,) bool). A negative ax (a flip) swaps x1, x2.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xs = ax * b[:, [0, 2]] + bx
    ys = ay * b[:, [1, 3]] + by
    moved = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    clipped = np.clip(moved, 0.0, 1.0)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    min_side = config.min_side_px / size
    keep = (w >= min_side) & (h >= min_side) & (w * h >= config.min_visible * area)
    return clipped[keep].astype(np.float32), keep


def hsv_scale(chw: np.ndarray, saturation: float, exposure: float) -> np.ndarray:
    """Scale S and V of a (3, H, W) float RGB image in [0, 1], clipping S and V to 1 in HSV.

    Done in RGB without a round trip through HSV: with V = max(r, g, b) and hue fixed,
    each channel is c = V − V·S·k(hue), so scaling S by f maps c → V − f·(V − c), and
    scaling V by e multiplies every channel by e. The per-pixel factors are capped where
    S or V would pass 1, which is what clipping them in HSV does.
    """
    v = chw.max(axis=0)
    spread = v - chw.min(axis=0)  # V·S
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(spread > 0, np.minimum(np.float32(saturation), v / spread), 0).astype(np.float32)
    out = v - f * (v - chw)
    with np.errstate(divide="ignore"):
        e = np.minimum(np.float32(exposure), np.where(v > 0, 1 / v, np.inf)).astype(np.float32)
    out *= e
    np.clip(out, 0.0, 1.0, out=out)
    return out


def to_chw(hwc: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (3, H, W) float32 in [0, 1]."""
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32) * np.float32(1 / 255)


def _resize_pil(image: np.ndarray, size: int) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _rand_scale(rng: np.random.Generator, limit: float) -> float:
    """A factor in [1, limit] or its inverse, with equal odds (darknet's rand_scale)."""
    f = rng.uniform(1.0, limit)
    return f if rng.random() < 0.5 else 1.0 / f
