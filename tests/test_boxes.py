"""Boxes: IoU, NMS, Overfeat merging, conversions, YOLO target encoding and decoding."""
import numpy as np
import pytest

from minidet.boxes import (box_iou, centers_to_corners, corners_to_centers, decode, encode_targets,
                           greedy_merge, nms, to_normalized, to_pixels)
from minidet.testing import assert_close


def test_iou_hand_cases():
    unit = [0.0, 0.0, 1.0, 1.0]
    b = np.array([
        [2.0, 2.0, 3.0, 3.0],     # disjoint: 0
        [0.25, 0.25, 0.75, 0.75],  # contained: 0.25 / 1
        unit,                      # identical: 1
        [1.0, 0.0, 2.0, 1.0],     # touching edge: 0
        [1.0, 1.0, 2.0, 2.0],     # touching corner: 0
        [0.5, 0.0, 1.5, 1.0],     # half overlap: 0.5 / 1.5
        [0.5, 0.5, 0.5, 0.9],     # zero width: 0, not NaN
    ])
    iou = box_iou(np.array([unit]), b)
    assert iou.shape == (1, 7)
    assert_close(iou[0], [0.0, 0.25, 1.0, 0.0, 0.0, 1 / 3, 0.0], rtol=1e-15)
    assert_close(box_iou(b, np.array([unit])), iou.T, rtol=0)   # symmetric
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 7)
    degenerate = np.array([[0.3, 0.3, 0.3, 0.3]])
    assert box_iou(degenerate, degenerate)[0, 0] == 0.0


def test_iou_validates_shapes():
    with pytest.raises(ValueError, match="box_iou.*a.*\\(3,\\)"):
        box_iou(np.zeros(3), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="box_iou.*b"):
        box_iou(np.zeros((1, 4)), np.zeros((2, 5)))


def test_nms_hand_cases():
    boxes = np.array([
        [0.0, 0.0, 1.0, 1.0],
        [0.0, 0.0, 1.0, 0.9],    # IoU 0.9 with box 0
        [2.0, 2.0, 3.0, 3.0],    # far away
        [0.5, 0.0, 1.5, 1.0],    # IoU 1/3 with box 0
    ])
    scores = np.array([0.8, 0.9, 0.3, 0.7])
    # By score: 1 (kept), 0 (IoU 0.9 with 1: dropped), 3 (IoU 0.5/1.4 with 1: kept), 2 (kept).
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [1, 3, 2] and keep.dtype.kind == "i"
    # Dropped only when IoU is GREATER than the threshold: 1/3 at threshold 1/3 stays.
    two = boxes[[0, 3]]
    assert nms(two, np.array([0.9, 0.8]), box_iou(two, two)[0, 1]).tolist() == [0, 1]
    assert nms(two, np.array([0.9, 0.8]), 0.3).tolist() == [0]


def test_nms_ties_are_stable_and_empty_input():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0]] * 3)
    assert nms(boxes, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    spread = np.array([[0.0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]])
    assert nms(spread, np.array([0.5, 0.7, 0.5]), 0.5).tolist() == [1, 0, 2]
    empty = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype.kind == "i"
    with pytest.raises(ValueError, match="nms.*scores"):
        nms(spread, np.zeros(2), 0.5)


def test_greedy_merge_weighted_average_and_summed_score():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.2, 0.0, 1.2, 1.0], [5.0, 5.0, 6.0, 6.0]])
    scores = np.array([1.0, 3.0, 0.5])
    merged, merged_scores = greedy_merge(boxes, scores, 0.5)
    # Boxes 0 and 1 (IoU 0.8/1.2) merge: x = (1·0 + 3·0.2) / 4 = 0.15, score 1 + 3 = 4.
    assert_close(merged, [[0.15, 0.0, 1.15, 1.0], [5.0, 5.0, 6.0, 6.0]], rtol=1e-14, atol=1e-15)
    assert_close(merged_scores, [4.0, 0.5], rtol=0)
    # Below the threshold nothing merges; inputs untouched.
    same, same_scores = greedy_merge(boxes, scores, 0.9)
    assert_close(same, boxes[[1, 0, 2]], rtol=0)
    assert_close(same_scores, [3.0, 1.0, 0.5], rtol=0)
    assert np.array_equal(scores, [1.0, 3.0, 0.5]) and boxes[1, 0] == 0.2
    # Three mutually overlapping boxes end as the score-weighted mean of all three.
    trio = np.array([[0.0, 0, 1, 1], [0.1, 0, 1.1, 1], [0.05, 0.1, 1.05, 1.1]])
    w = np.array([1.0, 2.0, 5.0])
    m, s = greedy_merge(trio, w, 0.5)
    assert_close(m, [(w[:, None] * trio).sum(0) / w.sum()], rtol=1e-14)
    assert_close(s, [8.0], rtol=0)


def test_conversions_round_trip():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(0, 1, (10, 2, 2)), axis=1).transpose(0, 2, 1).reshape(10, 4)
    corners = corners[:, [0, 2, 1, 3]]   # [x1, y1, x2, y2] with x1 <= x2, y1 <= y2
    centers = corners_to_centers(corners)
    assert_close(centers[:, 2], corners[:, 2] - corners[:, 0], rtol=1e-15)
    assert_close(centers_to_corners(centers), corners, rtol=1e-12, atol=1e-15)
    assert_close(to_pixels(np.array([[0.5, 0.25, 1.0, 1.0]]), 640, 480), [[320, 120, 640, 480]], rtol=0)
    assert_close(to_normalized(to_pixels(corners, 640, 480), 640, 480), corners, rtol=1e-15)


def test_encode_cell_and_frames():
    t = encode_targets(np.array([[0.4, 0.1, 0.6, 0.3]]), np.array([2]), 7, 4)
    # centre (0.5, 0.2): column int(3.5) = 3, row int(1.4) = 1; x = 0.5, y = 0.4 in the cell.
    assert t.shape == (7, 7, 9) and t.dtype == np.float32
    assert_close(t[1, 3], [0.5, 0.4, 0.2, 0.2, 1, 0, 0, 1, 0], rtol=1e-6, atol=1e-7)
    assert t[..., 4].sum() == 1 and np.count_nonzero(t) == 6   # x, y, w, h, obj, class
    assert encode_targets(np.zeros((0, 4)), np.zeros(0, int), 7, 4).any() == False  # noqa: E712


def test_encode_border_objects_land_in_last_cell():
    boxes = np.array([[0.9, 0.3, 1.1, 0.4], [0.2, 0.95, 0.4, 1.05], [0.95, 0.95, 1.05, 1.05]])
    t = encode_targets(boxes, np.array([0, 1, 2]), 4, 3)
    assert t[1, 3, 4] == 1 and t[1, 3, 0] == 1.0      # x = 1.0 -> column 3, x = 1
    assert t[3, 1, 4] == 1 and t[3, 1, 1] == 1.0      # y = 1.0 -> row 3, y = 1
    assert t[3, 3, 4] == 1 and t[3, 3, 7] == 1        # the corner, class 2


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_encode_larger_object_wins_a_shared_cell(order):
    boxes = np.array([[0.1, 0.1, 0.2, 0.2], [0.0, 0.0, 0.3, 0.32]])   # both centres in cell (0, 0) of S=2
    labels = np.array([0, 1])
    t = encode_targets(boxes[order], labels[order], 2, 2)
    assert t[0, 0, 6] == 1 and t[0, 0, 5] == 0
    assert_close(t[0, 0, 2:4], [0.3, 0.32], rtol=1e-6)


def test_encode_validates():
    with pytest.raises(ValueError, match="encode_targets.*labels"):
        encode_targets(np.array([[0.1, 0.1, 0.2, 0.2]]), np.array([5]), 7, 5)
    with pytest.raises(ValueError, match="encode_targets.*boxes"):
        encode_targets(np.array([[0.1, 0.1, 0.2]]), np.array([0]), 7, 5)


def perfect_pred(target, B):
    """The output a perfect network gives for `target` (S, S, 5 + C): every predictor exact."""
    S, C = target.shape[0], target.shape[2] - 5
    pred = np.zeros((1, S, S, 5 * B + C))
    obj = target[..., 4] > 0
    for b in range(B):
        pred[0, obj, 5 * b:5 * b + 5] = np.stack(
            [target[obj, 0], target[obj, 1], np.sqrt(target[obj, 2]), np.sqrt(target[obj, 3]),
             np.ones(obj.sum())], axis=-1)
    pred[0, obj, 5 * B:] = target[obj, 5:]
    return pred


def test_encode_decode_round_trip():
    boxes = np.array([[0.1, 0.2, 0.5, 0.7], [0.6, 0.55, 0.95, 1.0], [0.45, 0.05, 0.55, 0.15]])
    labels = np.array([3, 0, 3])
    target = encode_targets(boxes, labels, 7, 5, dtype=np.float64)
    (got_boxes, got_scores, got_labels), = decode(perfect_pred(target, 2), S=7, B=2, C=5)
    # Both predictors of a cell give the same box: NMS keeps one per object.
    assert len(got_boxes) == 3
    order = np.lexsort((got_boxes[:, 0], got_labels))
    want = np.lexsort((boxes[:, 0], labels))
    assert_close(got_boxes[order], boxes[want], rtol=1e-12, atol=1e-12)
    assert got_labels[order].tolist() == labels[want].tolist()
    assert_close(got_scores, np.ones(3), rtol=1e-12)


def test_decode_scores_threshold_clipping_per_class_nms_and_order():
    S, B, C = 2, 2, 2
    pred = np.zeros((1, S, S, 5 * B + C))
    pred[0, 0, 0, :5] = (0.5, 0.5, 0.6, 0.6, 0.9)        # cell (0, 0): centre (0.25, 0.25), w 0.36
    pred[0, 0, 0, 5:10] = (0.6, 0.5, 0.6, 0.6, 0.5)      # same cell, nearly the same box
    pred[0, 0, 0, 10:] = (0.8, 0.7)
    pred[0, 1, 1, :5] = (0.5, 0.5, -1.1, 1.1, 0.3)       # huge box: clipped to [0, 1]
    pred[0, 1, 1, 10:] = (1.0, 0.1)
    pred[0, 0, 1, :5] = (0.5, 0.5, 0.3, 0.3, -0.9)       # negative conf × negative class: no score
    pred[0, 0, 1, 10:] = (-0.9, -0.9)
    (boxes, scores, labels), = decode(pred, S=S, B=B, C=C, score_threshold=0.2, iou_threshold=0.4)
    # Scores = class · conf: cell (0,0) b0: 0.72 (c0), 0.63 (c1); b1: 0.4, 0.35 (suppressed by b0
    # of the same class); cell (1,1) b0: 0.3 (c0), 0.03 (below threshold).
    assert_close(scores, [0.72, 0.63, 0.3], rtol=1e-12)
    assert labels.tolist() == [0, 1, 0]
    assert_close(boxes[0], [0.07, 0.07, 0.43, 0.43], rtol=1e-12)
    assert_close(boxes[2], [0.145, 0.145, 1.0, 1.0], rtol=1e-12)   # 0.75 − 1.21 / 2
    assert (boxes >= 0).all() and (boxes <= 1).all()
    # Same class, overlap kept when NMS allows it; max_detections truncates by score.
    (_, s2, _), = decode(pred, S=S, B=B, C=C, score_threshold=0.2, iou_threshold=0.99)
    assert_close(s2, [0.72, 0.63, 0.4, 0.35, 0.3], rtol=1e-12)
    (_, s3, _), = decode(pred, S=S, B=B, C=C, score_threshold=0.2, iou_threshold=0.99, max_detections=2)
    assert_close(s3, [0.72, 0.63], rtol=1e-12)
    empty, = decode(np.zeros((1, S, S, 5 * B + C)), S=S, B=B, C=C)
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,) and empty[2].shape == (0,)
    with pytest.raises(ValueError, match="decode.*pred"):
        decode(np.zeros((1, S, S, 5)), S=S, B=B, C=C)


def test_cupy_inputs():
    cp = pytest.importorskip("cupy")
    from minidet.backend import gpu_available
    if not gpu_available():
        pytest.skip("no GPU")
    a = np.array([[0.0, 0.0, 1.0, 1.0], [0.5, 0.0, 1.5, 1.0]])
    iou = box_iou(cp.asarray(a), cp.asarray(a))
    assert isinstance(iou, cp.ndarray)
    assert_close(iou, box_iou(a, a), rtol=1e-15)
    target = encode_targets(np.array([[0.1, 0.2, 0.5, 0.7]]), np.array([1]), 7, 3, dtype=np.float64)
    (boxes, scores, labels), = decode(cp.asarray(perfect_pred(target, 2)), S=7, B=2, C=3)
    assert_close(boxes, [[0.1, 0.2, 0.5, 0.7]], rtol=1e-12)
    assert labels.tolist() == [1]


def test_decode_threshold_is_strict_at_the_boundary():
    """A class-specific score exactly equal to score_threshold is dropped (scores greater than
    it survive): conf 0.5 × class 0.5 = 0.25 exactly, in binary floating point."""
    S, B, C = 1, 1, 2
    pred = np.zeros((1, S, S, 5 * B + C), np.float32)
    pred[0, 0, 0, :5] = (0.5, 0.5, 0.5, 0.5, 0.5)
    pred[0, 0, 0, 5:] = (0.5, 0.0)
    (_, at, _), = decode(pred, S=S, B=B, C=C, score_threshold=0.25)
    assert at.shape == (0,)
    (_, below, labels), = decode(pred, S=S, B=B, C=C, score_threshold=float(np.nextafter(0.25, 0)))
    assert below.tolist() == [0.25] and labels.tolist() == [0]
