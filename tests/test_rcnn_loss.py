"""The second stage's multi-task loss: values by hand and the gradient in float64."""
import numpy as np
import pytest

from minidet.gradcheck import numerical_gradient, worst
from minidet.rcnn import MultiTaskLoss


def case(seed=0, R=6, C=3):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((R, C + 1))
    labels = np.array([0, 1, 3, 0, 2, 3])[:R]
    targets = rng.standard_normal((R, 4))
    box = rng.standard_normal((R, 4 * (C + 1)))
    # Keep each trained delta difference away from smooth L1's kink at |d| = β = 1.
    d = box.reshape(R, C + 1, 4)[np.arange(R), labels] - targets
    near = np.abs(np.abs(d) - 1) < 0.05
    targets[near] -= 0.2 * np.sign(d[near])
    return logits, box, labels, targets


def test_values_by_hand():
    loss = MultiTaskLoss()
    logits = np.array([[0.0, 0.0], [np.log(3), 0.0]])  # 2 RoIs, 1 class + background
    box = np.zeros((2, 8))
    box[1, 4:] = [0.5, -2.0, 0.0, 0.0]  # RoI 1 is class 0 (label 1): its block is columns 4…7
    labels = np.array([0, 1])
    targets = np.array([[9.0, 9, 9, 9], [0, 0, 0, 0]])  # background rows are ignored
    value = loss.forward(logits, box, labels, targets)
    cls = (np.log(2) + np.log(4)) / 2  # p = 1/2, then p(label 1) = 1/(3 + 1)
    loc = (0.5 * 0.25 + (2.0 - 0.5)) / 2
    assert loss.parts["cls"] == pytest.approx(cls) and loss.parts["box"] == pytest.approx(loc)
    assert value == pytest.approx(cls + loc)
    # β = 0.5: 0.5 is past the kink now; the linear part is shifted by β/2 so the pieces meet.
    loss = MultiTaskLoss(beta=0.5)
    loss.forward(logits, box, labels, targets)
    assert loss.parts["box"] == pytest.approx(((0.5 - 0.25) + (2.0 - 0.25)) / 2)


@pytest.mark.parametrize("box_weight,beta", [(1.0, 1.0), (2.0, 0.5)])
def test_gradients_match_finite_differences(box_weight, beta):
    logits, box, labels, targets = case()
    loss = MultiTaskLoss(box_weight, beta)
    if beta != 1.0:  # move the differences away from this β's kink too
        d = box.reshape(6, 4, 4)[np.arange(6), labels] - targets
        targets[np.abs(np.abs(d) - beta) < 0.05] += 0.2
    loss.forward(logits, box, labels, targets)
    dlogits, dbox = loss.backward()
    for analytic, x in ((dlogits, logits), (dbox, box)):
        numeric = numerical_gradient(lambda: MultiTaskLoss(box_weight, beta).forward(logits, box, labels, targets), x)
        err, where = worst(analytic, numeric)
        assert err < 1e-7, (err, where)
    # Only the true class's block of a foreground RoI is trained.
    mask = np.zeros((6, 4, 4), bool)
    mask[np.arange(6), labels] = labels[:, None] > 0
    assert (dbox.reshape(6, 4, 4)[~mask] == 0).all() and (dbox.reshape(6, 4, 4)[mask] != 0).all()


def test_bad_shapes_and_labels():
    logits, box, labels, targets = case()
    with pytest.raises(ValueError, match=r"box \(R, 4·\(C \+ 1\)\).*\(6, 12\)"):
        MultiTaskLoss().forward(logits, box[:, :12], labels, targets)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got 0 … 4"):
        MultiTaskLoss().forward(logits, box, np.array([0, 1, 4, 0, 2, 3]), targets)
    with pytest.raises(RuntimeError, match="before forward"):
        MultiTaskLoss().backward()
