"""minidet.ssd: default boxes, matching, offsets, the multibox loss and its mining, detection."""
import math

import numpy as np
import pytest

from minidet.boxes import box_iou, centers_to_corners
from minidet.gradcheck import numerical_gradient, worst
from minidet.ssd import (MultiboxLoss, background_loss, decode_offsets, default_boxes, detect, encode_offsets,
                         hard_negatives, match)


# -- default boxes ----------------------------------------------------------------------

def test_default_boxes_order_and_count():
    priors = default_boxes([3, 2], [0.2, 0.5, 0.8], [[2, 3], [2]])
    assert priors.shape == (3 * 3 * 6 + 2 * 2 * 4, 4) and priors.dtype == np.float64
    s, e = 0.2, math.sqrt(0.2 * 0.5)
    # map 0, row 0, column 1: centre ((1 + .5) / 3, .5 / 3), then its six boxes in order
    cell = priors[6:12]
    assert np.allclose(cell[:, :2], [[1.5 / 3, 0.5 / 3]] * 6)
    expect = [(s, s), (e, e), (s * math.sqrt(2), s / math.sqrt(2)), (s / math.sqrt(2), s * math.sqrt(2)),
              (s * math.sqrt(3), s / math.sqrt(3)), (s / math.sqrt(3), s * math.sqrt(3))]
    assert np.allclose(cell[:, 2:], expect, rtol=0, atol=1e-15)
    # map 0, row 1 (y), column 0 (x) comes after the 3 cells of row 0
    assert np.allclose(priors[18, :2], [0.5 / 3, 1.5 / 3])
    # map 1 starts after 54 boxes: scale 0.5, extra sqrt(0.5 * 0.8)
    assert np.allclose(priors[54], [0.25, 0.25, 0.5, 0.5])
    assert np.allclose(priors[55, 2:], [math.sqrt(0.4)] * 2)
    assert np.allclose(priors[-1], [0.75, 0.75, 0.5 / math.sqrt(2), 0.5 * math.sqrt(2)])


def test_default_boxes_clip():
    priors = default_boxes([1], [0.9, 1.0], [[3]], clip=True)
    corners = centers_to_corners(priors)
    assert corners.min() >= 0 and corners.max() <= 1
    assert np.allclose(priors[2], [0.5, 0.5, 1.0, 0.9 / math.sqrt(3)])


@pytest.mark.parametrize("args, word", [(([3], [0.2], [[2]]), "scales"), (([3], [0.2, 0.4], [[0.5]]), "ratio"),
                                        (([3, 2], [0.1, 0.2, 0.3], [[2]]), "aspect_ratios"),
                                        (([0], [0.2, 0.3], [[]]), "feature_sizes")])
def test_default_boxes_bad_input(args, word):
    with pytest.raises(ValueError, match=word):
        default_boxes(*args)


# -- matching ------------------------------------------------------------------------------

def _priors_from_corners(corners):
    c = np.asarray(corners, dtype=np.float64)
    return np.stack([(c[:, 0] + c[:, 2]) / 2, (c[:, 1] + c[:, 3]) / 2, c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], 1)


def test_match_threshold_and_best_truth():
    priors = _priors_from_corners([[0, 0, .5, .5], [0, 0, .5, 1], [.5, .5, 1, 1], [0, 0, 1, 1]])
    truths = np.array([[0, 0, .5, .5], [.5, .5, 1, 1]])
    loc_t, conf_t = match(truths, np.array([2, 7]), priors)
    # prior 1: IoU 0.5 exactly with truth 0 -> positive (>= threshold); prior 3: IoU .25 -> background
    assert box_iou(truths, centers_to_corners(priors))[0, 1] == 0.5
    assert conf_t.tolist() == [3, 3, 8, 0] and conf_t.dtype == np.int64
    assert np.allclose(loc_t[0], 0) and np.allclose(loc_t[2], 0)
    assert np.allclose(loc_t[1], [0, (0.25 - 0.5) / (0.1 * 1.0), 0, math.log(0.5) / 0.2])


def test_match_just_below_threshold_is_background():
    priors = _priors_from_corners([[0, 0, .5, .5], [0, 0, .5, 1 + 1e-9]])
    _, conf_t = match(np.array([[0, 0, .5, .5]]), np.array([0]), priors)
    assert conf_t.tolist() == [1, 0]


def test_match_forced_best_prior():
    # IoU 0.25 with the only prior: below the threshold, but the truth's best prior is claimed
    priors = _priors_from_corners([[0, 0, 1, 1], [.9, .9, 1, 1]])
    _, conf_t = match(np.array([[0, 0, .5, .5]]), np.array([4]), priors)
    assert conf_t.tolist() == [5, 0]


def test_match_later_truth_wins_shared_prior():
    # both truths have prior 0 as their best; truth 0 fits it better, truth 1 claims it last
    priors = _priors_from_corners([[0, 0, 1, 1], [.9, .9, 1, 1]])
    truths = np.array([[0, 0, .8, .8], [0, 0, .6, .6]])
    loc_t, conf_t = match(truths, np.array([1, 2]), priors, threshold=0.9)
    assert conf_t.tolist() == [3, 0]
    assert np.allclose(decode_offsets(loc_t, priors)[0], [0.3, 0.3, 0.6, 0.6])


def test_match_ties_go_to_the_first():
    priors = _priors_from_corners([[0, 0, .5, .5], [0, 0, .5, .5]])   # the same box twice
    truths = np.array([[0, 0, .5, .5], [0, 0, .5, .5]])
    _, conf_t = match(truths, np.array([0, 1]), priors)
    # each prior takes truth 0 (first tie); both truths claim prior 0 (first tie), truth 1 last
    assert conf_t.tolist() == [2, 1]


def test_match_no_truths():
    priors = default_boxes([2], [0.3, 0.6], [[2]])
    loc_t, conf_t = match(np.zeros((0, 4)), np.zeros(0, np.int64), priors)
    assert conf_t.shape == (16,) and not conf_t.any() and loc_t.shape == (16, 4) and not loc_t.any()


@pytest.mark.parametrize("truths, labels, priors, word", [
    (np.zeros((2, 3)), np.zeros(2, np.int64), np.ones((4, 4)), r"truths must have shape \(M, 4\).*\(2, 3\)"),
    (np.zeros((2, 4)), np.zeros(3, np.int64), np.ones((4, 4)), r"labels must have shape \(2,\).*\(3,\)"),
    (np.zeros((2, 4)), np.zeros(2), np.ones((4, 4)), "labels must be integers"),
    (np.zeros((2, 4)), np.zeros(2, np.int64), np.ones((4, 5)), r"priors must have shape \(A, 4\).*\(4, 5\)"),
    (np.zeros((2, 4), np.int64), np.zeros(2, np.int64), np.ones((4, 4)), "truths must be floating"),
])
def test_match_bad_input(truths, labels, priors, word):
    with pytest.raises(ValueError, match=word):
        match(truths, labels, priors)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    priors = default_boxes([4, 2], [0.2, 0.5, 0.8], [[2], [2, 3]])
    boxes = np.concatenate([rng.uniform(0.05, 0.95, (len(priors), 2)), rng.uniform(0.01, 0.9, (len(priors), 2))], 1)
    loc = encode_offsets(boxes, priors)
    assert np.allclose(decode_offsets(loc, priors), boxes, rtol=0, atol=1e-14)
    batch = np.stack([loc, 2 * loc])
    assert np.allclose(decode_offsets(batch, priors)[0], boxes, atol=1e-14)
    truths = np.array([[0.1, 0.2, 0.45, 0.7], [0.5, 0.5, 0.9, 0.8]])
    loc_t, conf_t = match(truths, np.array([0, 1]), priors)
    decoded = centers_to_corners(decode_offsets(loc_t, priors))
    for a in np.nonzero(conf_t)[0]:
        assert np.allclose(decoded[a], truths[conf_t[a] - 1], atol=1e-14)


# -- the loss ---------------------------------------------------------------------------------

def loss_by_loops(loc, conf, loc_t, conf_t, neg_pos_ratio=3.0, alpha=1.0):
    """The loss written prior by prior, the mining by a sort of (−loss, index) per image."""
    n_img, a_all, _ = loc.shape
    total_pos = int((conf_t > 0).sum())
    ce_sum = l1_sum = 0.0
    chosen = np.zeros(conf_t.shape, bool)
    for n in range(n_img):
        pos = [a for a in range(a_all) if conf_t[n, a] > 0]
        bg = {}
        for a in range(a_all):
            m = max(conf[n, a])
            lse = m + math.log(sum(math.exp(v - m) for v in conf[n, a]))
            bg[a] = lse - conf[n, a, 0]
            if conf_t[n, a] > 0:
                ce_sum += lse - conf[n, a, conf_t[n, a]]
                for d in range(4):
                    x = loc[n, a, d] - loc_t[n, a, d]
                    l1_sum += 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5
        k = min(int(math.floor(neg_pos_ratio * len(pos))), a_all - len(pos))
        rest = sorted((a for a in range(a_all) if conf_t[n, a] == 0), key=lambda a: (-bg[a], a))
        for a in rest[:k]:
            ce_sum += bg[a]
            chosen[n, a] = True
    if total_pos == 0:
        return 0.0, chosen
    return (ce_sum + alpha * l1_sum) / total_pos, chosen


def _batch(rng, n=3, a=12, c=4, dtype=np.float64):
    loc = rng.standard_normal((n, a, 4)).astype(dtype) * 1.5
    conf = rng.standard_normal((n, a, c + 1)).astype(dtype)
    loc_t = rng.standard_normal((n, a, 4)).astype(dtype)
    conf_t = np.zeros((n, a), np.int64)
    conf_t[0, [1, 5]] = [2, 4]
    conf_t[1, 7] = 1              # image 2 (index 2) has no positive, so no negatives
    return loc, conf, loc_t, conf_t


@pytest.mark.parametrize("ratio, alpha", [(3.0, 1.0), (1.5, 0.5), (100.0, 2.0)])
def test_multibox_loss_matches_loops(ratio, alpha):
    loc, conf, loc_t, conf_t = _batch(np.random.default_rng(1))
    fn = MultiboxLoss(neg_pos_ratio=ratio, alpha=alpha)
    value = fn.forward(loc, conf, loc_t, conf_t)
    expect, chosen = loss_by_loops(loc, conf, loc_t, conf_t, ratio, alpha)
    assert value == pytest.approx(expect, rel=1e-12)
    assert np.array_equal(fn.negatives, chosen)
    assert fn.components["loc"] + fn.components["conf"] == pytest.approx(value, rel=1e-12)
    assert fn.negatives[2].sum() == 0 and fn.negatives[0].sum() == min(int(2 * ratio), 10)


def test_mining_ties_go_to_the_lower_index():
    conf = np.zeros((1, 8, 3))
    conf[0, :, 1] = [0, 1, 1, 1, 1, 0, 2, 0]     # background losses tie at priors 1–4
    conf_t = np.zeros((1, 8), np.int64)
    conf_t[0, 0] = 2
    neg = hard_negatives(background_loss(conf), conf_t > 0, 3.0)
    assert np.nonzero(neg[0])[0].tolist() == [1, 2, 6]
    loss = MultiboxLoss()
    loss.forward(np.zeros((1, 8, 4)), conf, np.zeros((1, 8, 4)), conf_t)
    assert np.nonzero(loss.negatives[0])[0].tolist() == [1, 2, 6]


def test_no_positive_gives_zero_loss_and_gradient():
    rng = np.random.default_rng(2)
    loc, conf, loc_t, _ = _batch(rng)
    fn = MultiboxLoss()
    assert fn.forward(loc, conf, loc_t, np.zeros((3, 12), np.int64)) == 0.0
    dloc, dconf = fn.backward()
    assert not dloc.any() and not dconf.any() and not fn.negatives.any()


@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_multibox_loss_gradcheck_float64(alpha):
    loc, conf, loc_t, conf_t = _batch(np.random.default_rng(3))
    # keep every loc − loc_t away from smooth L1's kink at |x| = 1
    d = loc - loc_t
    loc = np.where(np.abs(np.abs(d) - 1) < 0.05, loc + 0.2, loc)
    fn = MultiboxLoss(alpha=alpha)
    fn.forward(loc, conf, loc_t, conf_t)
    fixed = fn.negatives.copy()
    dloc, dconf = fn.backward()
    assert fixed.sum() == 9        # 3 per positive
    value = lambda: MultiboxLoss(alpha=alpha).forward(loc, conf, loc_t, conf_t, negatives=fixed)  # noqa: E731
    for analytic, x in ((dloc, loc), (dconf, conf)):
        err, where = worst(analytic, numerical_gradient(value, x))
        assert err < 1e-7, where
    assert np.abs(dloc).max() > 0 and np.abs(dconf).max() > 0


def test_multibox_loss_float32_in_float32_out():
    loc, conf, loc_t, conf_t = _batch(np.random.default_rng(4), dtype=np.float32)
    fn = MultiboxLoss()
    value = fn.forward(loc, conf, loc_t, conf_t)
    dloc, dconf = fn.backward()
    assert dloc.dtype == np.float32 and dconf.dtype == np.float32
    ref = MultiboxLoss().forward(*(x.astype(np.float64) for x in (loc, conf, loc_t)), conf_t)
    assert value == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("change, word", [
    (dict(loc=np.zeros((3, 12, 5))), r"loc must have shape \(N, A, 4\), got \(3, 12, 5\)"),
    (dict(conf=np.zeros((3, 11, 5))), r"conf must have shape \(3, 12, C \+ 1\).*got \(3, 11, 5\)"),
    (dict(loc_t=np.zeros((3, 12))), r"loc_t must have shape \(3, 12, 4\).*got \(3, 12\)"),
    (dict(conf_t=np.zeros((3, 12, 1), np.int64)), r"conf_t must have shape \(3, 12\), got \(3, 12, 1\)"),
    (dict(conf_t=np.zeros((3, 12))), "conf_t must hold integer"),
    (dict(conf_t=np.full((3, 12), 5)), r"conf_t must lie in \[0, 5\)"),
    (dict(loc=np.zeros((3, 12, 4), np.int64)), "loc must be floating"),
])
def test_multibox_loss_bad_input(change, word):
    loc, conf, loc_t, conf_t = _batch(np.random.default_rng(5))
    args = dict(loc=loc, conf=conf, loc_t=loc_t, conf_t=conf_t, **{})
    args.update(change)
    with pytest.raises(ValueError, match=word):
        MultiboxLoss().forward(**args)


# -- detection ----------------------------------------------------------------------------------

def test_detect_decodes_and_suppresses():
    priors = _priors_from_corners([[0, 0, .5, .5], [0, 0, .52, .5], [.5, .5, 1, 1], [0, 0, 1, 1]])
    loc = np.zeros((1, 4, 4))
    conf = np.full((1, 4, 3), -10.0)
    conf[0, 0, 1] = conf[0, 1, 1] = 5.0      # two overlapping class-0 boxes: NMS keeps the first
    conf[0, 1, 1] = 4.0
    conf[0, 2, 2] = 3.0                      # class 1
    conf[0, 3, 0] = 10.0                     # background
    (boxes, scores, labels), = detect(loc, conf, priors, score_threshold=0.5)
    assert labels.tolist() == [0, 1]
    assert np.allclose(boxes, [[0, 0, .5, .5], [.5, .5, 1, 1]])
    p = np.exp(5) / (np.exp(5) + np.exp(-10) * 2)
    assert scores[0] == pytest.approx(p)
    assert scores[1] < scores[0]
    (b2, _, l2), = detect(loc, conf, priors, score_threshold=0.5, iou_threshold=0.99)
    assert l2.tolist() == [0, 0, 1]


def test_detect_suppresses_per_class_only():
    """Two identical boxes of different classes both survive; of the same class, one does."""
    priors = _priors_from_corners([[.1, .1, .5, .5], [.1, .1, .5, .5], [.6, .6, .9, .9]])
    conf = np.full((1, 3, 4), -10.0)
    conf[0, 0, 1], conf[0, 1, 2], conf[0, 2, 1] = 6.0, 5.0, 4.0
    (boxes, scores, labels), = detect(np.zeros((1, 3, 4)), conf, priors, score_threshold=0.5)
    assert labels.tolist() == [0, 1, 0] and np.allclose(boxes[0], boxes[1])
    conf[0, 1, 1], conf[0, 1, 2] = 5.0, -10.0
    (_, _, labels), = detect(np.zeros((1, 3, 4)), conf, priors, score_threshold=0.5)
    assert labels.tolist() == [0, 0]
