"""Augmentation: boxes follow the pixels; the plain resize; HSV scaling."""
import colorsys

import numpy as np
import pytest

from minidet.data import AugmentConfig, augment, resize
from minidet.data.augment import hsv_scale, transform_boxes

RED = (255, 0, 0)


def picture(box_px, size=(120, 80)):
    """A grey (H, W) = (80, 120) image with a red rectangle covering pixels box_px = (x0, y0, x1, y1), exclusive ends."""
    w, h = size
    image = np.full((h, w, 3), 90, np.uint8)
    x0, y0, x1, y1 = box_px
    image[y0:y1, x0:x1] = RED
    return image, np.array([[x0 / w, y0 / h, x1 / w, y1 / h]], np.float32)


def red_extent(chw):
    """The normalized [x1, y1, x2, y2] of the reddish pixels of a (3, S, S) image."""
    r, g, b = chw
    mask = (r > 0.5) & (r > 2 * g) & (r > 2 * b)
    ys, xs = np.nonzero(mask)
    s = chw.shape[1]
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / s


def test_flip_maps_a_box_exactly():
    boxes = np.array([[0.1, 0.2, 0.3, 0.6]], np.float32)
    out, keep = transform_boxes(boxes, -1.0, 1.0, 1.0, 0.0, 100)  # x → 1 − x
    np.testing.assert_allclose(out, [[0.7, 0.2, 0.9, 0.6]], atol=1e-7)
    image, boxes = picture((12, 16, 36, 48))
    no_change = AugmentConfig(scale=0, translate=0, flip=1.0, exposure=1, saturation=1)
    chw, out, keep = augment(image, boxes, 60, np.random.default_rng(0), no_change)
    np.testing.assert_allclose(out, [[1 - 0.3, 0.2, 1 - 0.1, 0.6]], atol=1e-6)
    no_flip = AugmentConfig(scale=0, translate=0, flip=0.0, exposure=1, saturation=1)
    mirror = augment(image, boxes, 60, np.random.default_rng(0), no_flip)[0][:, :, ::-1]
    np.testing.assert_allclose(chw, mirror, atol=1.01 / 255)


@pytest.mark.parametrize("seed", range(12))
def test_boxes_follow_the_pixels(seed):
    image, boxes = picture((30, 20, 90, 60))
    gentle = AugmentConfig(exposure=1.2, saturation=1.2)  # keep red recognisably red
    chw, out, keep = augment(image, boxes, 96, np.random.default_rng(seed), gentle)
    assert chw.shape == (3, 96, 96) and chw.dtype == np.float32
    assert 0 <= chw.min() and chw.max() <= 1
    assert keep.tolist() == [True]  # scale ≤ 20 %, shift ≤ 20 %: this central box stays
    # Bilinear edges blur by a pixel; the box must bound the red pixels to within that.
    np.testing.assert_allclose(out[0], red_extent(chw), atol=1.5 / 96)


def test_boxes_moved_out_are_dropped():
    boxes = np.array([[0.0, 0.0, 0.1, 0.1], [0.4, 0.4, 0.6, 0.6], [0.85, 0.4, 1.0, 0.6]], np.float32)
    out, keep = transform_boxes(boxes, 1.0, 0.2, 1.0, 0.0, 100)  # shift right by 20 %
    assert keep.tolist() == [True, True, False]
    np.testing.assert_allclose(out, [[0.2, 0.0, 0.3, 0.1], [0.6, 0.4, 0.8, 0.6]], atol=1e-7)
    out, keep = transform_boxes(boxes, 1.0, 0.0, 1.0, 0.0, 100)
    assert keep.all()
    thin = np.array([[0.5, 0.5, 0.51, 0.9]], np.float32)  # 1 px wide at 100 px
    assert transform_boxes(thin, 1.0, 0.0, 1.0, 0.0, 100)[1].tolist() == [False]
    empty, keep = transform_boxes(np.zeros((0, 4), np.float32), 1.0, 0.0, 1.0, 0.0, 100)
    assert empty.shape == (0, 4) and keep.shape == (0,)


def test_augment_is_a_function_of_the_generator_state():
    image, boxes = picture((30, 20, 90, 60))
    a = augment(image, boxes, 64, np.random.default_rng(5))
    b = augment(image, boxes, 64, np.random.default_rng(5))
    c = augment(image, boxes, 64, np.random.default_rng(6))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_resize_is_chw_float_in_unit_range():
    image = np.zeros((30, 50, 3), np.uint8)
    image[..., 1] = 255
    out = resize(image, 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out[1], 1.0)
    np.testing.assert_allclose(out[[0, 2]], 0.0)
    with pytest.raises(ValueError, match="uint8"):
        resize(image.astype(np.float32), 32)


def test_hsv_scale_matches_colorsys():
    rng = np.random.default_rng(0)
    chw = rng.random((3, 4, 5)).astype(np.float32)
    for sat, exp in [(1.5, 1.0), (0.7, 1.4), (1.4, 0.6)]:
        out = hsv_scale(chw.copy(), sat, exp)
        for y in range(4):
            for x in range(5):
                h, s, v = colorsys.rgb_to_hsv(*chw[:, y, x])
                expected = colorsys.hsv_to_rgb(h, min(1.0, s * sat), min(1.0, v * exp))
                np.testing.assert_allclose(out[:, y, x], expected, atol=1e-5)


class Scripted:
    """A stand-in generator that returns given values, in the order `augment` draws them:
    scale, (tx, ty), the flip draw, saturation (factor, inversion draw), exposure (same)."""

    def __init__(self, *values):
        self.values = list(values)

    def _next(self, low=None, high=None):
        value = self.values.pop(0)
        if low is not None:
            assert np.all(low <= np.asarray(value)) and np.all(np.asarray(value) <= high), (value, low, high)
        return value

    def uniform(self, low, high, size=None):
        value = self._next(low, high)
        return np.asarray(value, dtype=float) if size is not None else value

    def random(self):
        return self._next()


PLAIN = dict(scale=0.0, translate=0.0, flip=0.0, exposure=1.0, saturation=1.0)


def test_scaling_is_about_the_centre_hand_computed():
    """s = 0.5 about the centre maps u → 0.5·u + 0.25: the box [0.4, 0.2, 0.6, 0.4] becomes
    [0.45, 0.35, 0.55, 0.45], and so do the red pixels (about the corner it would be
    [0.2, 0.1, 0.3, 0.2])."""
    image, boxes = picture((40, 20, 60, 40), size=(100, 100))
    config = AugmentConfig(**{**PLAIN, "scale": 0.5})
    rng = Scripted(0.5, [0.0, 0.0], 0.9, 1.0, 0.9, 1.0, 0.9)
    chw, out, keep = augment(image, boxes, 100, rng, config)
    assert not rng.values and keep.tolist() == [True]
    np.testing.assert_allclose(out, [[0.45, 0.35, 0.55, 0.45]], atol=1e-6)
    np.testing.assert_allclose(red_extent(chw), [0.45, 0.35, 0.55, 0.45], atol=1.01 / 100)


def test_saturation_and_exposure_each_scale_their_own_channel_hand_computed():
    """RGB (0.4, 0.2, 0.2) is V 0.4, S 0.5. Saturation × 1.5 (S 0.75) gives (0.4, 0.1, 0.1),
    then exposure × 1.2 gives (0.48, 0.12, 0.12). Swapped (saturation 1.2, exposure 1.5) it
    would be (0.6, 0.24, 0.24)."""
    image = np.empty((20, 20, 3), np.uint8)
    image[...] = (102, 51, 51)
    config = AugmentConfig(**{**PLAIN, "saturation": 1.5, "exposure": 1.5})
    rng = Scripted(1.0, [0.0, 0.0], 0.9, 1.5, 0.1, 1.2, 0.1)
    chw, _, _ = augment(image, np.zeros((0, 4), np.float32), 20, rng, config)
    assert not rng.values
    np.testing.assert_allclose(chw[:, 10, 10], [0.48, 0.12, 0.12], atol=1e-6)
    rng = Scripted(1.0, [0.0, 0.0], 0.9, 1.5, 0.9, 1.2, 0.9)  # both inverted: 1/1.5 and 1/1.2
    chw, _, _ = augment(image, np.zeros((0, 4), np.float32), 20, rng, config)
    # S × 2/3 = 1/3: c = 0.4 − (2/3)·0.2; then V × 1/1.2.
    np.testing.assert_allclose(chw[:, 10, 10], np.array([0.4, 0.4 - 0.2 * 2 / 3, 0.4 - 0.2 * 2 / 3]) / 1.2,
                               atol=1e-6)


def test_visible_fraction_is_measured_on_the_unclipped_box():
    """A box 0.2 wide pushed past the right edge keeps 25 % (kept) or 15 % (dropped) of its
    area; measured on the clipped box it would always be 100 % and never dropped. Both
    stay wider than min_side_px (5 and 3 pixels of 100), so only the 20 % rule decides."""
    boxes = np.array([[0.7, 0.4, 0.9, 0.6]], np.float32)
    out, keep = transform_boxes(boxes, 1.0, 0.25, 1.0, 0.0, 100)
    assert keep.tolist() == [True]
    np.testing.assert_allclose(out, [[0.95, 0.4, 1.0, 0.6]], atol=1e-6)
    out, keep = transform_boxes(boxes, 1.0, 0.27, 1.0, 0.0, 100)
    assert keep.tolist() == [False] and out.shape == (0, 4)
    assert transform_boxes(boxes, 1.0, 0.27, 1.0, 0.0, 100, AugmentConfig(min_visible=0.1))[1].tolist() == [True]


@pytest.mark.parametrize("seed", range(8))
def test_zoom_out_and_in_move_the_boxes_with_the_pixels(seed):
    image, boxes = picture((30, 20, 90, 60))
    zoom = AugmentConfig(exposure=1.0, saturation=1.0, flip=0.0, zoom_p=1.0, zoom_out=2.0, zoom_in=1.5)
    chw, out, keep = augment(image, boxes, 96, np.random.default_rng(seed), zoom)
    if keep[0]:
        np.testing.assert_allclose(out[0], red_extent(chw), atol=1.5 / 96)
    # The scale is in [1/2, 1.5]: the box's width (half the image) within [1/4, 3/4] when whole.
    (x0, y0, x1, y1), = red_extent(chw)[None]
    if 0 < x0 and x1 < 1:
        assert 0.25 - 2 / 96 <= x1 - x0 <= 0.75 + 2 / 96


def test_zoom_out_keeps_the_whole_image_on_the_canvas():
    # Zoom out only: the image shrinks by up to 2 and stays inside the output, so a box
    # touching every edge ends up whole, at most half as wide, never cut.
    image, boxes = picture((0, 0, 120, 80))
    zoom = AugmentConfig(exposure=1.0, saturation=1.0, flip=0.0, zoom_p=1.0, zoom_out=2.0)
    for seed in range(10):
        chw, out, keep = augment(image, boxes, 64, np.random.default_rng(seed), zoom)
        assert keep.tolist() == [True]
        w = out[0, 2] - out[0, 0]
        assert 0.5 - 1e-6 <= w <= 1 + 1e-6 and (out >= 0).all() and (out <= 1).all()
        np.testing.assert_allclose(out[0], red_extent(chw), atol=1.5 / 64)


def test_without_zoom_the_random_stream_is_unchanged():
    image, boxes = picture((30, 20, 90, 60))
    a = augment(image, boxes, 64, np.random.default_rng(3), AugmentConfig())
    b = augment(image, boxes, 64, np.random.default_rng(3), AugmentConfig(zoom_out=2.0, zoom_in=2.0))  # zoom_p 0
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
