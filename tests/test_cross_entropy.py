"""The one softmax cross-entropy: its value by hand, its gradient against finite differences
(every entry, float64), weights, and the loud refusal of mismatched labels."""
import numpy as np
import pytest

from minidet.cross_entropy import softmax, softmax_cross_entropy
from minidet.gradcheck import numerical_gradient, worst


def test_value_by_hand_and_no_overflow():
    loss, _, p = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(2 * np.log(4), rel=1e-15)
    assert np.array_equal(p, np.full((2, 4), 0.25))
    loss, grad, _ = softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([0]))
    assert loss == 0.0 and np.all(np.isfinite(grad))
    assert np.allclose(softmax(np.array([[1000.0, 1000.0]])), 0.5)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_every_entry_float64(weighted):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 2, 5)) * 3
    labels = rng.integers(0, 5, (3, 2))
    weight = (rng.random((3, 2)) > 0.4) * rng.uniform(0.5, 2, (3, 2)) if weighted else None
    _, grad, _ = softmax_cross_entropy(logits, labels, weight)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels, weight)[0], logits)
    err, where = worst(grad, numeric)
    assert err < 1e-7, f"{err:.2e} at {where}"
    if weighted:
        assert np.all(grad[weight == 0] == 0)   # a row of weight 0: no gradient


def test_weight_scales_each_row():
    logits = np.random.default_rng(1).standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    rows = [softmax_cross_entropy(logits[i:i + 1], labels[i:i + 1])[0] for i in range(4)]
    w = np.array([0.0, 1.0, 2.0, 0.5])
    assert softmax_cross_entropy(logits, labels, w)[0] == pytest.approx(float(np.dot(w, rows)), rel=1e-12)


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\).*got \(3,\)"):
        softmax_cross_entropy(np.zeros((2, 4)), np.zeros(3, np.int64))
