"""Faster R-CNN's anchor grid, RPN target assignment and sampling, and the proposal layer."""
import numpy as np
import pytest

from minidet.boxes import box_iou
from minidet.rcnn import anchor_grid, anchor_shapes, decode_deltas, propose, rpn_targets


def test_anchor_shapes_keep_the_area_and_set_the_ratio():
    shapes = anchor_shapes((16, 32), (0.5, 1.0, 2.0))
    np.testing.assert_allclose(shapes.prod(axis=1), [256] * 3 + [1024] * 3)
    np.testing.assert_allclose(shapes[:, 1] / shapes[:, 0], [0.5, 1, 2] * 2)  # height / width


def test_anchor_grid_centres_and_order():
    a = anchor_grid(2, 3, stride=16, scales=(16, 32), ratios=(0.5, 1.0, 2.0))
    assert a.shape == (2 * 3 * 6, 4)
    cells = a.reshape(2, 3, 6, 4)
    centres = (cells[..., :2] + cells[..., 2:]) / 2
    np.testing.assert_allclose(centres[1, 2], np.tile([2.5 * 16, 1.5 * 16], (6, 1)))  # cell (i=1, j=2)
    np.testing.assert_allclose(cells[0, 0, 4], [8 - 16, 8 - 16, 8 + 16, 8 + 16])      # scale 32, ratio 1
    np.testing.assert_allclose(cells[1, 1] - cells[0, 0], np.tile([16, 16, 16, 16], (6, 1)))
    with pytest.raises(ValueError, match="anchor_grid"):
        anchor_grid(0, 3, 16)


def test_rpn_targets_positive_negative_and_ignored():
    anchors = np.array([
        [0, 0, 20, 20],     # IoU 1 with the object: positive
        [0, 0, 20, 18],     # IoU 0.9: positive
        [0, 0, 20, 30],     # IoU 0.667: neither (between 0.3 and 0.7)
        [40, 40, 60, 60],   # IoU 0: negative
        [-5, 0, 15, 20],    # crosses the border: ignored
        [40, 0, 60, 20],    # negative
        [50, 0, 70, 20],    # crosses the right border: ignored
        [0, 50, 20, 70],    # crosses the bottom border: ignored
    ], dtype=float)
    t = rpn_targets(anchors, [[0, 0, 20, 20]], 64, 64, np.random.default_rng(0))
    assert t.labels.tolist() == [1, 1, -1, 0, -1, 0, -1, -1]
    np.testing.assert_allclose(t.targets[0], 0, atol=1e-12)
    np.testing.assert_allclose(decode_deltas(anchors[1:2], t.targets[1:2], stds=(1, 1, 1, 1)), [[0, 0, 20, 20]])
    assert (t.targets[2:] == 0).all()


def test_every_object_gets_its_best_anchor_even_below_the_threshold():
    anchors = np.array([[0, 0, 32, 32], [30, 30, 62, 62], [0, 32, 32, 64]], dtype=float)
    gt = [[2, 2, 12, 12]]  # a small object: best IoU 100/1024, far below 0.7
    t = rpn_targets(anchors, gt, 64, 64, np.random.default_rng(0))
    assert t.labels.tolist() == [1, 0, 0]
    # Ties: every anchor sharing an object's best IoU is positive.
    t = rpn_targets(np.array([[0, 0, 10, 40], [0, 0, 40, 10]], float), [[0, 0, 10, 10]], 64, 64,
                    np.random.default_rng(0))
    assert t.labels.tolist() == [1, 1]


def test_rpn_sampling_caps_positives_at_half_and_the_total_at_num():
    anchors = anchor_grid(16, 16, 8, scales=(16, 32, 64))
    gt = np.array([[10, 10, 40, 40], [60, 70, 120, 110], [20, 80, 50, 125]])
    t = rpn_targets(anchors, gt, 128, 128, np.random.default_rng(0), num=64, fg_fraction=0.5)
    pos, neg = (t.labels == 1).sum(), (t.labels == 0).sum()
    assert 0 < pos <= 32 and pos + neg == 64
    iou = box_iou(anchors, gt).max(axis=1)
    assert (iou[t.labels == 0] < 0.3).all()
    full = rpn_targets(anchors, gt, 128, 128, np.random.default_rng(0), num=10 ** 6)
    assert (full.labels == 1).sum() == pos < 32  # fewer positives than half: all of them, topped up with negatives
    np.testing.assert_array_equal(t.labels, rpn_targets(anchors, gt, 128, 128, np.random.default_rng(0), num=64).labels)
    assert (rpn_targets(anchors, np.zeros((0, 4)), 128, 128, np.random.default_rng(0), num=8).labels >= 0).sum() == 8


def test_proposal_layer_decodes_clips_drops_small_suppresses_and_truncates():
    anchors = np.array([[0, 0, 20, 20], [1, 1, 21, 21], [50, 50, 70, 70], [90, 90, 130, 130],
                        [30, 30, 31, 31], [10, 60, 30, 80]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.1])
    deltas = np.zeros((6, 4))
    deltas[2] = [0.5, 0, 0, 0]  # moved right by half its width
    p = propose(anchors, scores, deltas, 100, 100, nms_iou=0.7, min_size=2)
    # [30, 30, 31, 31] is 1 pixel: dropped; anchor 1 overlaps anchor 0 at IoU 0.82: suppressed;
    # anchor 3 is clipped to the image.
    assert p.boxes.tolist() == [[0, 0, 20, 20], [60, 50, 80, 70], [90, 90, 100, 100], [10, 60, 30, 80]]
    assert p.scores.tolist() == [0.9, 0.7, 0.6, 0.1]
    assert len(propose(anchors, scores, deltas, 100, 100, post_nms_top_n=2, min_size=2).boxes) == 2
    top = propose(anchors, scores, deltas, 100, 100, pre_nms_top_n=2, min_size=2)
    assert top.boxes.tolist() == [[0, 0, 20, 20]]  # the top two are the 1-pixel box and anchor 0
    with pytest.raises(ValueError, match="6 anchors, 5 scores and 6 deltas"):
        propose(anchors, scores[:5], deltas, 100, 100)
