"""The RPN's loss and the head-map ↔ anchor-row layout."""
import numpy as np
import pytest

from minidet.gradcheck import numerical_gradient, worst
from minidet.rcnn import RpnLoss, anchor_grid, rpn_maps, rpn_rows


def test_rows_follow_the_anchor_grid_order_and_invert():
    N, A, h, w = 2, 3, 4, 5
    rng = np.random.default_rng(0)
    logits, deltas = rng.standard_normal((N, A, h, w)), rng.standard_normal((N, 4 * A, h, w))
    rows, d = rpn_rows(logits, deltas)
    anchors = anchor_grid(h, w, 8, scales=(8,), ratios=(0.5, 1.0, 2.0))
    assert rows.shape == (N, len(anchors)) and d.shape == (N, len(anchors), 4)
    i, j, a = 2, 3, 1
    r = (i * w + j) * A + a
    centre = (anchors[r, :2] + anchors[r, 2:]) / 2
    np.testing.assert_allclose(centre, [(j + 0.5) * 8, (i + 0.5) * 8])  # row r is cell (i, j)
    assert rows[1, r] == logits[1, a, i, j] and d[1, r].tolist() == deltas[1, 4 * a:4 * a + 4, i, j].tolist()
    back_l, back_d = rpn_maps(rows, d, A, h, w)
    np.testing.assert_array_equal(back_l, logits)
    np.testing.assert_array_equal(back_d, deltas)
    with pytest.raises(ValueError, match="deltas must have shape"):
        rpn_rows(logits, deltas[:, :4])


def case(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((2, 7))
    deltas = rng.standard_normal((2, 7, 4)) * 0.3
    labels = np.array([[1, 0, -1, 0, 1, -1, 0], [0, -1, 1, -1, -1, 0, 1]])
    targets = deltas + rng.choice([-1, 1], (2, 7, 4)) * rng.uniform(0.02, 0.3, (2, 7, 4))
    d = np.abs(deltas - targets)
    targets[np.abs(d - 1 / 9) < 0.01] += 0.05  # away from smooth L1's kink at β = 1/9
    return logits, deltas, labels, targets


def test_values_by_hand():
    loss = RpnLoss(beta=1.0)
    logits = np.array([[0.0, np.log(3), 5.0]])
    labels = np.array([[1, 0, -1]])
    deltas = np.zeros((1, 3, 4))
    targets = np.zeros((1, 3, 4))
    targets[0, 0] = [0.5, 2.0, 0, 0]   # positive: 0.125 + 1.5
    targets[0, 1] = [9, 9, 9, 9]       # negative: no box term
    value = loss.forward(logits, deltas, labels, targets)
    cls = (np.log(2) + np.log(4)) / 2  # σ(0) = 1/2 for label 1; σ(log 3) = 3/4 for label 0
    assert loss.parts["objectness"] == pytest.approx(cls) and loss.parts["box"] == pytest.approx(1.625 / 2)
    assert value == pytest.approx(cls + 1.625 / 2)


def test_gradients_match_finite_differences_and_ignore_the_unsampled():
    logits, deltas, labels, targets = case()
    loss = RpnLoss(box_weight=2.0)
    loss.forward(logits, deltas, labels, targets)
    dl, dd = loss.backward()
    for analytic, x in ((dl, logits), (dd, deltas)):
        numeric = numerical_gradient(lambda: RpnLoss(box_weight=2.0).forward(logits, deltas, labels, targets), x)
        err, where = worst(analytic, numeric)
        assert err < 1e-7, (err, where)
    assert (dl[labels < 0] == 0).all() and (dd[labels != 1] == 0).all() and (dd[labels == 1] != 0).all()


def test_bad_shapes():
    logits, deltas, labels, targets = case()
    with pytest.raises(ValueError, match=r"RpnLoss: expected logits \(N, K\)"):
        RpnLoss().forward(logits, deltas[:, :5], labels, targets)
    with pytest.raises(RuntimeError, match="before forward"):
        RpnLoss().backward()
