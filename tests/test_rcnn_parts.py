"""The R-CNN family's shared parts: box deltas, RoI sampling, warped crops."""
import numpy as np
import pytest

from minidet.boxes import box_iou
from minidet.rcnn import decode_deltas, encode_deltas, sample_rois
from minidet.rcnn.crops import context_boxes, warp_crops


def test_deltas_by_hand_and_round_trip():
    p = np.array([[10, 20, 30, 60]])  # centre (20, 40), 20 × 40
    g = np.array([[12, 16, 52, 56]])  # centre (32, 36), 40 × 40
    t = encode_deltas(p, g, stds=(1, 1, 1, 1))
    np.testing.assert_allclose(t, [[12 / 20, -4 / 40, np.log(2), 0.0]], atol=1e-15)
    np.testing.assert_allclose(encode_deltas(p, g), t / [0.1, 0.1, 0.2, 0.2])
    rng = np.random.default_rng(0)
    xy, wh = rng.uniform(0, 100, (50, 2)), rng.uniform(1, 50, (50, 2))
    P = np.concatenate([xy, xy + wh], axis=1)
    G = P + rng.uniform(-5, 5, (50, 4))
    G[:, 2:] = np.maximum(G[:, 2:], G[:, :2] + 1)
    np.testing.assert_allclose(decode_deltas(P, encode_deltas(P, G)), G, atol=1e-9)


def test_decode_caps_the_log_scale():
    out = decode_deltas([[0, 0, 10, 10]], [[0, 0, 1e4, 1e4]], stds=(1, 1, 1, 1))
    assert np.isfinite(out).all() and out[0, 2] - out[0, 0] == pytest.approx(10 * 1000 / 16)


def test_deltas_bad_input():
    with pytest.raises(ValueError, match="2 proposals for 1 ground truths"):
        encode_deltas(np.ones((2, 4)), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="positive width"):
        encode_deltas([[0, 0, 0, 1]], [[0, 0, 1, 1]])


def test_sample_rois_thresholds_labels_and_targets():
    gt = np.array([[0, 0, 10, 10], [50, 50, 70, 70]])
    labels = np.array([3, 7])
    props = np.array([
        [0, 0, 10, 9],      # IoU 0.9 with gt 0: foreground
        [50, 50, 70, 66],   # IoU 0.8 with gt 1: foreground
        [0, 0, 10, 25],     # IoU 0.4: background
        [5, 5, 15, 15],     # IoU 25/175 = 0.14: background
        [90, 90, 99, 99],   # IoU 0: neither
    ])
    s = sample_rois(props, gt, labels, num=64, rng=np.random.default_rng(0), fg_fraction=0.5)
    # 2 ground truths + 2 foreground proposals, 2 background; the far box is left out.
    assert s.num_foreground == 4 and len(s.labels) == 6
    assert sorted(s.labels[:4].tolist()) == [4, 4, 8, 8] and (s.labels[4:] == 0).all()
    assert (s.targets[4:] == 0).all() and (s.gt_index[4:] == -1).all()
    np.testing.assert_allclose(s.targets[:4], encode_deltas(s.boxes[:4], gt[s.gt_index[:4]]))
    assert {tuple(b) for b in s.boxes[4:].tolist()} == {(0, 0, 10, 25), (5, 5, 15, 15)}
    iou = box_iou(s.boxes, gt).max(axis=1)
    assert (iou[:4] >= 0.5).all() and ((iou[4:] >= 0.1) & (iou[4:] < 0.5)).all()


def test_sample_rois_caps_the_foreground_share_and_is_seeded():
    rng = np.random.default_rng(1)
    gt = np.array([[20, 20, 60, 60]])
    near = np.array([20, 20, 60, 60]) + rng.uniform(-3, 3, (300, 4))   # foreground
    far = np.array([20, 20, 60, 60]) + rng.uniform(15, 25, (300, 4))   # IoU in [0.1, 0.5)
    props = np.concatenate([near, far])
    s = sample_rois(props, gt, [0], num=32, rng=np.random.default_rng(2), fg_fraction=0.25)
    assert len(s.labels) == 32 and s.num_foreground == 8
    again = sample_rois(props, gt, [0], num=32, rng=np.random.default_rng(2), fg_fraction=0.25)
    np.testing.assert_array_equal(s.boxes, again.boxes)
    other = sample_rois(props, gt, [0], num=32, rng=np.random.default_rng(3), fg_fraction=0.25)
    assert not np.array_equal(s.boxes, other.boxes)
    assert len({tuple(b) for b in s.boxes.tolist()}) == 32  # without replacement
    with pytest.raises(ValueError, match="1 ground-truth boxes for 2 labels"):
        sample_rois(props, gt, [0, 1], num=8, rng=rng)


def test_warp_crops_read_each_box_at_pixel_centres():
    img = np.zeros((12, 30, 3), np.uint8)
    img[..., 0] = 5 * np.arange(30)[None, :]          # red = 5·column
    img[..., 1] = 20 * np.arange(12)[:, None]         # green = 20·row
    crops = warp_crops(img, [[10, 2, 20, 7], [0, 0, 30, 12]], size=10)
    assert crops.shape == (2, 3, 10, 10) and crops.dtype == np.float32
    np.testing.assert_allclose(255 * crops[0, 0, 0], 5 * np.arange(10, 20), rtol=1e-5)  # a pixel per column
    # 5 rows into 10: output row j reads y = 2 + (j + 0.5)/2 − 0.5, bilinear between rows (clamped at 0).
    np.testing.assert_allclose(255 * crops[0, 1, :, 0], 20 * (2 + (np.arange(10) + 0.5) / 2 - 0.5), rtol=1e-5)
    np.testing.assert_allclose(255 * crops[1, 0, 0], 5 * np.clip(np.arange(10) * 3 + 1, 0, 29), rtol=1e-5)


def test_context_grows_each_box_to_leave_context_pixels():
    boxes = np.array([[10, 10, 30, 20], [0, 0, 8, 8]])
    grown = context_boxes(boxes, size=24, context=2)
    # 2 of 24 warped pixels per side: the 20 × 10 box fills the middle 20 of the 24, so a warped
    # pixel is 1 × 0.5 image pixels and the box grows by 2 × 1 on each side.
    np.testing.assert_allclose(grown, [[8, 9, 32, 21], [-0.8, -0.8, 8.8, 8.8]])
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)
    np.testing.assert_allclose(warp_crops(img, boxes, 24, context=2), warp_crops(img, grown, 24), rtol=1e-6)
    with pytest.raises(ValueError, match="context"):
        context_boxes(boxes, size=4, context=2)
    with pytest.raises(ValueError, match="positive width"):
        warp_crops(img, [[5, 5, 5, 9]], 8)
