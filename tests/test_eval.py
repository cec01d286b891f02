"""PASCAL VOC AP: hand-computed cases for both metrics, the devkit's matching rules, and a
cross-check against an independent straightforward implementation on random data."""
import copy

import numpy as np
import pytest

from minidet.eval import evaluate, pr_curves
from minidet.testing import assert_close

# Boxes along a line: box(k) is the unit square shifted by 2k, so different k never overlap.
def box(k, dx=0.0, width=1.0):
    return [2.0 * k + dx, 0.0, 2.0 * k + dx + width, 1.0]


def dets(boxes, scores, labels):
    return (np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores, dtype=float), np.array(labels, dtype=int))


def gts(boxes, labels, difficult=None):
    n = len(labels)
    return (np.array(boxes, dtype=float).reshape(-1, 4), np.array(labels, dtype=int),
            np.zeros(n, bool) if difficult is None else np.array(difficult, bool))


def test_hand_computed_ap_both_metrics():
    # 3 truths of class 0; detections by score: TP, FP (nothing there), TP, FP.
    truth = [gts([box(0), box(1), box(2)], [0, 0, 0])]
    found = [dets([box(0), box(5), box(1), box(6)], [0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0])]
    # rank  TP FP  recall  precision
    #  1     1  0   1/3     1
    #  2     1  1   1/3     1/2
    #  3     2  1   2/3     2/3
    #  4     2  2   2/3     1/2
    rec, prec = pr_curves(found, truth)[0]
    assert_close(rec, [1 / 3, 1 / 3, 2 / 3, 2 / 3], rtol=1e-15)
    assert_close(prec, [1, 1 / 2, 2 / 3, 1 / 2], rtol=1e-15)
    # All-point: envelope 1 on (0, 1/3], 2/3 on (1/3, 2/3], nothing beyond: 1/3 + 2/9 = 5/9.
    result = evaluate(found, truth)
    assert result["AP"] == {0: pytest.approx(5 / 9, abs=1e-15)}
    assert result["mAP"] == pytest.approx(5 / 9, abs=1e-15)
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t = .7 ... 1 -> 0. (4 + 2) / 11.
    assert evaluate(found, truth, use_07_metric=True)["AP"][0] == pytest.approx(6 / 11, abs=1e-15)


def test_eleven_point_recall_of_exactly_three_tenths_misses_the_fourth_threshold():
    # 10 truths, 3 detections, all TP: recall 0.1, 0.2, 0.3 at precision 1. The thresholds
    # are numpy.arange(0.0, 1.1, 0.1), whose fourth is 0.30000000000000004 > 3/10: only
    # t = 0, .1, .2 are reached, AP = 3/11 (exact tenths would give 4/11).
    truth = [gts([box(k) for k in range(10)], [0] * 10)]
    found = [dets([box(0), box(1), box(2)], [0.9, 0.8, 0.7], [0, 0, 0])]
    assert evaluate(found, truth, use_07_metric=True)["AP"][0] == pytest.approx(3 / 11, abs=1e-15)
    # All-point: 0.3 · 1.
    assert evaluate(found, truth)["AP"][0] == pytest.approx(0.3, abs=1e-15)


def port_voc_ap(outcome, npos):
    """The 11-point AP as the widely used Python ports of the devkit compute it
    (py-faster-rcnn's voc_eval.voc_ap with use_07_metric=True): outcome is the TP (True) /
    FP (False) flag of each detection by descending score."""
    tp = np.cumsum(np.array(outcome, dtype=float))
    fp = np.cumsum(1.0 - np.array(outcome, dtype=float))
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
        ap = ap + p / 11.0
    return ap


@pytest.mark.parametrize("outcome", [
    [True, True, False, True],                                   # recall 3/10 exactly
    [True, False, True, True, True, False, True, True, True],    # recall 7/10 exactly, precision < 1
    [True, True, True, False, True, True, True, False, False, True],  # 6/10 then 7/10
])
def test_eleven_point_ap_equals_the_python_ports_to_the_last_bit(outcome):
    # 10 truths of class 0 in one image; detection k is a TP on truth k or a FP far away.
    truth = [gts([box(k) for k in range(10)], [0] * 10)]
    boxes, g = [], 0
    for hit in outcome:
        boxes.append(box(g) if hit else box(40 + len(boxes)))
        g += hit
    scores = np.linspace(0.9, 0.1, len(outcome))
    found = [dets(boxes, scores, [0] * len(outcome))]
    ours = evaluate(found, truth, use_07_metric=True)["AP"][0]
    assert ours == port_voc_ap(outcome, 10)   # bit for bit, not approximately
    tenths = sum(max([p for p, r in zip(*pr_curves(found, truth)[0][::-1]) if r >= k / 10], default=0.0)
                 for k in range(11)) / 11
    assert abs(ours - tenths) > 1e-3   # exact tenths would not agree with the ports here


def test_duplicates_are_false_positives():
    # Truths A, B. Detections: A (TP), A again (duplicate: FP), B (TP).
    # recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
    # All-point: 1/2 · 1 + 1/2 · 2/3 = 5/6 (it would be 1 if the duplicate were ignored).
    # 11-point: t ≤ .5 -> 1 (6 points), t ≥ .6 -> 2/3 (5 points): (6 + 10/3) / 11 = 28/33.
    truth = [gts([box(0), box(1)], [0, 0])]
    found = [dets([box(0), box(0, dx=0.05), box(1)], [0.9, 0.8, 0.7], [0, 0, 0])]
    rec, prec = pr_curves(found, truth)[0]
    assert_close(rec, [0.5, 0.5, 1.0], rtol=0)
    assert_close(prec, [1.0, 0.5, 2 / 3], rtol=1e-15)
    assert evaluate(found, truth)["AP"][0] == pytest.approx(5 / 6, abs=1e-15)
    assert evaluate(found, truth, use_07_metric=True)["AP"][0] == pytest.approx(28 / 33, abs=1e-15)


def test_match_goes_to_highest_iou_truth_even_if_claimed():
    # Truths A = [0, 1] and B = [0.5, 1.5] (in x). First detection is exactly B: TP, claims B.
    # Second, [0.3, 1.3]: IoU 0.7/1.3 ≈ 0.54 with A and 0.8/1.2 ≈ 0.67 with B; B is its best
    # match and is claimed, so it is a FP (VOC does not fall back to A).
    # recall 1/2, 1/2; precision 1, 1/2 -> all-point AP 1/2.
    truth = [gts([[0, 0, 1, 1], [0.5, 0, 1.5, 1]], [0, 0])]
    found = [dets([[0.5, 0, 1.5, 1], [0.3, 0, 1.3, 1]], [0.9, 0.8], [0, 0])]
    assert evaluate(found, truth)["AP"][0] == pytest.approx(0.5, abs=1e-15)


def test_iou_threshold_is_inclusive_and_class_must_match():
    # IoU exactly 0.5 is a match; a detection of another class on the truth is not.
    truth = [gts([box(0)], [0])]
    half = [dets([box(0, width=0.5)], [0.9], [0])]
    assert evaluate(half, truth)["AP"][0] == 1.0
    wrong_class = [dets([box(0)], [0.9], [1])]
    assert evaluate(wrong_class, truth) == {"mAP": 0.0, "AP": {0: 0.0}}


def test_difficult_truths_are_ignored():
    # Truths: A (normal), D (difficult). Detections: on D (0.9, ignored), on A (0.8, TP),
    # on nothing (0.7, FP). npos = 1. Curve without the ignored row: recall 1, 1; precision 1, 1/2.
    # AP 1 for both metrics (counting the first detection as a FP would give 1/2).
    truth = [gts([box(0), box(1)], [0, 0], [False, True])]
    found = [dets([box(1), box(0), box(4)], [0.9, 0.8, 0.7], [0, 0, 0])]
    rec, prec = pr_curves(found, truth)[0]
    assert_close(rec, [1.0, 1.0], rtol=0)
    assert_close(prec, [1.0, 0.5], rtol=0)
    assert evaluate(found, truth)["AP"][0] == 1.0
    assert evaluate(found, truth, use_07_metric=True)["AP"][0] == pytest.approx(1.0, abs=1e-15)
    # A second detection on the difficult truth is ignored too, not a duplicate.
    found2 = [dets([box(1), box(1), box(0)], [0.9, 0.85, 0.8], [0, 0, 0])]
    assert evaluate(found2, truth)["AP"][0] == 1.0


def test_class_sets_no_detections_zero_no_truths_absent():
    # Class 0: detected perfectly (AP 1). Class 1: truths, no detections (AP 0).
    # Class 2: detections, no truths: absent, and its detections change nothing.
    # Class 3: only a difficult truth: absent. mAP = (1 + 0) / 2.
    truth = [gts([box(0), box(1), box(3)], [0, 1, 3], [False, False, True]), gts([], [])]
    found = [dets([box(0), box(2)], [0.9, 0.95], [0, 2]), dets([box(1)], [0.99], [2])]
    result = evaluate(found, truth)
    assert result == {"mAP": 0.5, "AP": {0: 1.0, 1: 0.0}}
    rec, prec = pr_curves(found, truth)[1]
    assert rec.shape == (0,) and prec.shape == (0,)
    # No truths at all: mAP is defined as 0.0.
    assert evaluate([dets([box(0)], [0.5], [0])], [gts([], [])]) == {"mAP": 0.0, "AP": {}}
    assert evaluate([], []) == {"mAP": 0.0, "AP": {}}


def test_validation():
    with pytest.raises(ValueError, match="one entry per image.*2 detection.*1 ground-truth"):
        evaluate([dets([], [], [])] * 2, [gts([], [])])
    with pytest.raises(ValueError, match=r"detections\[0\]"):
        evaluate([dets([box(0)], [0.5, 0.4], [0])], [gts([], [])])
    with pytest.raises(ValueError, match=r"ground_truths\[0\].*labels"):
        evaluate([dets([], [], [])], [gts([box(0)], [7])], num_classes=5)


def random_case(seed, n_images=6, n_classes=3):
    """Truths with some difficult ones; detections jittered around them (IoUs on both sides of
    0.5), duplicates, wrong-class and background detections, and a class with no truths."""
    rng = np.random.default_rng(seed)
    truths, found = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 5))
        xy = rng.uniform(0, 0.7, (g, 2))
        wh = rng.uniform(0.1, 0.3, (g, 2))
        gboxes = np.concatenate([xy, xy + wh], axis=1)
        glabels = rng.integers(0, n_classes, g)
        truths.append((gboxes, glabels, rng.random(g) < 0.2))
        boxes, labels = [], []
        for b, lab in zip(gboxes, glabels):
            for _ in range(int(rng.integers(0, 3))):   # 0, 1 or 2 (a duplicate) detections
                boxes.append(b + rng.normal(0, 0.04, 4))
                labels.append(lab if rng.random() < 0.85 else (lab + 1) % (n_classes + 1))
        for _ in range(int(rng.integers(0, 3))):       # background
            xy = rng.uniform(0, 0.8, 2)
            boxes.append(np.concatenate([xy, xy + 0.15]))
            labels.append(int(rng.integers(0, n_classes + 1)))
        found.append(dets(np.array(boxes).reshape(-1, 4), rng.random(len(boxes)), labels))
    return found, truths


def reference_ap(found, truths, cls, threshold=0.5):
    """A straightforward, independent VOC AP: plain loops, and the all-point AP written as
    (1 / npos) · Σ over true positives of the best precision at that rank or later."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        return iw * ih / union

    items = [(s, img, b) for img, (bs, ss, ls) in enumerate(found)
             for b, s, l in zip(bs, ss, ls) if l == cls]
    items.sort(key=lambda t: -t[0])
    npos = sum(1 for gb, gl, gd in truths for l, d in zip(gl, gd) if l == cls and not d)
    claimed, outcome = set(), []
    for _, img, b in items:
        gb, gl, gd = truths[img]
        best, best_g = -1.0, None
        for g in range(len(gl)):
            if gl[g] == cls and iou(b, gb[g]) > best:
                best, best_g = iou(b, gb[g]), g
        if best_g is None or best < threshold:
            outcome.append(False)
        elif gd[best_g]:
            continue
        elif (img, best_g) in claimed:
            outcome.append(False)
        else:
            claimed.add((img, best_g))
            outcome.append(True)
    precision = [sum(outcome[:i + 1]) / (i + 1) for i in range(len(outcome))]
    recall = [sum(outcome[:i + 1]) / npos for i in range(len(outcome))]
    all_point = sum(max(precision[i:]) for i, tp in enumerate(outcome) if tp) / npos
    eleven = sum(max([p for p, r in zip(precision, recall) if r >= t], default=0.0)
                 for t in np.arange(0.0, 1.1, 0.1)) / 11
    return all_point, eleven


@pytest.mark.parametrize("seed", range(20))
def test_matches_independent_implementation_on_random_data(seed):
    found, truths = random_case(seed)
    result = evaluate(found, truths)
    eleven = evaluate(found, truths, use_07_metric=True)
    expected_classes = sorted({int(l) for _, gl, gd in truths for l, d in zip(gl, gd) if not d})
    assert sorted(result["AP"]) == expected_classes == sorted(eleven["AP"])
    for c in expected_classes:
        ref_all, ref_11 = reference_ap(found, truths, c)
        assert result["AP"][c] == pytest.approx(ref_all, abs=1e-12), c
        assert eleven["AP"][c] == pytest.approx(ref_11, abs=1e-12), c
    if expected_classes:
        assert result["mAP"] == pytest.approx(np.mean([result["AP"][c] for c in expected_classes]))


def test_inputs_are_not_mutated():
    found, truths = random_case(7)
    before = copy.deepcopy((found, truths))
    for entry in found + truths:
        for a in entry:
            a.flags.writeable = False   # an in-place write would raise
    evaluate(found, truths)
    evaluate(found, truths, use_07_metric=True)
    pr_curves(found, truths)
    for now, then in zip(found + truths, before[0] + before[1]):
        for a, b in zip(now, then):
            assert np.array_equal(a, b) and a.dtype == b.dtype
