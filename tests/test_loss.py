"""YoloLoss: value, gradient, and each detail that popular ports of YOLO v1 get wrong."""
import numpy as np
import pytest

from minidet.boxes import encode_targets
from minidet.gradcheck import numerical_gradient, worst
from minidet.loss import YoloLoss, assign
from minidet.testing import assert_close

S, B, C = 2, 2, 3
D = 5 * B + C


def empty_target(n=1, s=S, c=C):
    return np.zeros((n, s, s, 5 + c))


def put_object(target, n, i, j, x, y, w, h, cls):
    target[n, i, j, :5] = (x, y, w, h, 1.0)
    target[n, i, j, 5 + cls] = 1.0


def set_box(pred, n, i, j, b, x, y, sw, sh, conf):
    pred[n, i, j, 5 * b:5 * b + 5] = (x, y, sw, sh, conf)


def clear_assignment_case(seed=0):
    """A random batch whose responsible predictors are far from any switch.

    In each object cell one predictor sits near the truth (IoU > 0.5) and the other is far
    smaller (IoU < 0.1), so no small step of any entry changes the assignment.
    """
    rng = np.random.default_rng(seed)
    pred = rng.uniform(-0.5, 1.0, size=(2, S, S, D))
    target = empty_target(2)
    for n, i, j, winner in [(0, 0, 0, 0), (0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 0)]:
        x, y, w, h = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5)
        put_object(target, n, i, j, x, y, w, h, int(rng.integers(C)))
        set_box(pred, n, i, j, winner, x + 0.02, y - 0.03, np.sqrt(w) + 0.03, np.sqrt(h) - 0.02, rng.uniform(0, 1))
        set_box(pred, n, i, j, 1 - winner, x, y, 0.1 * np.sqrt(w), -0.1 * np.sqrt(h), rng.uniform(0, 1))
    return pred, target


def test_gradient_check_every_entry_float64_with_fixed_assignment():
    pred, target = clear_assignment_case()
    loss = YoloLoss(S=S, B=B, C=C)
    fixed = assign(pred, target, B)
    assert fixed[0].tolist() == [[[0, -1], [-1, 1]], [[-1, 1], [0, -1]]]
    loss.forward(pred, target, assignment=fixed)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: YoloLoss(S=S, B=B, C=C).forward(pred, target, assignment=fixed), pred)
    err, where = worst(analytic, numeric)
    assert err < 1e-7, f"relative error {err:.2e} at {where}"
    # Away from switches, the loss's own assignment is the fixed one.
    assert np.array_equal(loss.forward(pred, target), loss.forward(pred, target, assignment=fixed))


def test_hand_computed_tiny_loss():
    # S=1, B=2, C=2. Truth: centre (0.5, 0.5), w = h = 0.25 (sqrt 0.5), class 1.
    # Predictor 0: x = 0.6, sqrt_w = sqrt_h = 0.5, conf 0.8 -> box x in [0.475, 0.725],
    #   intersection 0.15 * 0.25 = 0.0375, union 0.0625 + 0.0625 - 0.0375 = 0.0875, IoU 3/7.
    # Predictor 1: sqrt 0.25 -> w = h = 0.0625, inside the truth: IoU 0.0625² / 0.25² = 1/16.
    # Predictor 0 is responsible.
    #   coord = 5 · 0.1² = 0.05;  obj = (0.8 − 3/7)² = (13/35)² = 169/1225
    #   noobj = 0.5 · 0.4² = 0.08;  cls = 0.2² + (0.7 − 1)² = 0.13
    target = empty_target(1, 1, 2)
    put_object(target, 0, 0, 0, 0.5, 0.5, 0.25, 0.25, 1)
    pred = np.zeros((1, 1, 1, 12))
    set_box(pred, 0, 0, 0, 0, 0.6, 0.5, 0.5, 0.5, 0.8)
    set_box(pred, 0, 0, 0, 1, 0.5, 0.5, 0.25, 0.25, 0.4)
    pred[0, 0, 0, 10:] = (0.2, 0.7)
    loss = YoloLoss(S=1, B=2, C=2)
    value = loss.forward(pred, target)
    assert loss.responsible.tolist() == [[[0]]]
    assert loss.iou[0, 0, 0] == pytest.approx(3 / 7, abs=1e-15)
    expected = {"coord": 0.05, "obj": 169 / 1225, "noobj": 0.08, "cls": 0.13}
    for k, v in expected.items():
        assert loss.components[k] == pytest.approx(v, abs=1e-14), k
    assert value == pytest.approx(0.26 + 169 / 1225, abs=1e-14)
    # Divided by N: a second image, empty and predicted all zeros, halves it.
    pred2 = np.concatenate([pred, np.zeros_like(pred)])
    target2 = np.concatenate([target, np.zeros_like(target)])
    assert YoloLoss(S=1, B=2, C=2).forward(pred2, target2) == pytest.approx(value / 2, abs=1e-14)


def test_components_sum_to_total():
    pred, target = clear_assignment_case(seed=3)
    loss = YoloLoss(S=S, B=B, C=C, lambda_coord=3.0, lambda_noobj=0.25)
    total = loss.forward(pred, target)
    assert set(loss.components) == {"coord", "obj", "noobj", "cls"}
    assert sum(loss.components.values()) == pytest.approx(total, rel=1e-12)
    assert all(v > 0 for v in loss.components.values())


def test_iou_target_carries_no_gradient():
    pred, target = clear_assignment_case(seed=1)
    loss = YoloLoss(S=S, B=B, C=C)
    loss.forward(pred, target)
    d = loss.backward()
    n = pred.shape[0]
    box, dbox = pred[..., :5 * B].reshape(n, S, S, B, 5), d[..., :5 * B].reshape(n, S, S, B, 5)
    for (img, i, j), b in np.ndenumerate(loss.responsible):
        if b < 0:
            continue
        t = target[img, i, j]
        # conf: exactly 2 (conf − IoU) / N, with the IoU the forward pass used.
        assert dbox[img, i, j, b, 4] == 2 * (box[img, i, j, b, 4] - loss.iou[img, i, j]) / n
        # coordinates: only λcoord's term, no −2 (conf − IoU) ∂IoU/∂x.
        want = 2 * 5.0 * (box[img, i, j, b, :4] - [t[0], t[1], np.sqrt(t[2]), np.sqrt(t[3])]) / n
        assert_close(dbox[img, i, j, b, :4], want, rtol=1e-14, atol=1e-15)
    # The full (IoU-differentiated) gradient would differ: the forward's IoU does depend on x.
    free = numerical_gradient(lambda: YoloLoss(S=S, B=B, C=C).forward(pred, target), pred)
    assert np.abs(free[..., :4] - d[..., :4]).max() > 1e-3


def test_sqrt_outputs_negative_and_zero_are_finite():
    target = empty_target()
    put_object(target, 0, 0, 0, 0.5, 0.5, 0.16, 0.09, 0)
    pred = np.zeros((1, S, S, D))
    set_box(pred, 0, 0, 0, 0, 0.5, 0.5, -0.4, 0.0, 0.5)   # w = 0.16, h = 0: area 0, IoU 0
    set_box(pred, 0, 0, 0, 1, 0.5, 0.5, 0.0, -0.3, 0.5)   # w = 0: IoU 0
    set_box(pred, 0, 1, 1, 0, 0.5, 0.5, -1.0, 0.0, 0.3)   # empty cell
    loss = YoloLoss(S=S, B=B, C=C)
    value = loss.forward(pred, target)
    d = loss.backward()
    assert np.isfinite(value) and np.isfinite(d).all()
    # Both IoUs are 0: the fallback picks predictor 1 (error 0.4² + 0.6² = 0.52)
    # over predictor 0 (0.8² + 0.3² = 0.73); its sqrt_w gradient is λ·2(0 − 0.4).
    assert loss.responsible[0, 0, 0] == 1
    assert d[0, 0, 0, 7] == pytest.approx(2 * 5.0 * (0.0 - 0.4))
    assert d[0, 0, 0, 8] == pytest.approx(2 * 5.0 * (-0.3 - 0.3))
    # A negative sqrt is squared, not rooted: sqrt_w = -0.4 decodes to w = 0.16.
    flipped = pred.copy()
    set_box(flipped, 0, 0, 0, 0, 0.5, 0.5, -0.4, -0.3, 0.5)
    loss.forward(flipped, target)
    assert loss.responsible[0, 0, 0] == 0
    assert loss.iou[0, 0, 0] == pytest.approx(1.0)


def test_non_responsible_predictor_in_object_cell_gets_noobj():
    pred, target = clear_assignment_case(seed=2)
    loss = YoloLoss(S=S, B=B, C=C, lambda_noobj=0.5)
    loss.forward(pred, target)
    d = loss.backward()
    n = pred.shape[0]
    conf, dconf = pred[..., 4:5 * B:5], d[..., 4:5 * B:5]         # (N, S, S, B)
    other = np.ones((n, S, S, B), bool)
    for (img, i, j), b in np.ndenumerate(loss.responsible):
        if b >= 0:
            other[img, i, j, b] = False
            o = 1 - b
            assert dconf[img, i, j, o] == pytest.approx(2 * 0.5 * conf[img, i, j, o] / n, rel=1e-14)
            assert not np.any(d[img, i, j, 5 * o:5 * o + 4])   # no coordinate term for it
    assert loss.components["noobj"] == pytest.approx(0.5 * np.sum(conf[other] ** 2) / n, rel=1e-14)


def test_class_error_only_in_object_cells():
    pred, target = clear_assignment_case(seed=4)
    target[..., 5:] = np.where(target[..., 4:5] > 0, target[..., 5:], 1.0)  # garbage in empty cells
    loss = YoloLoss(S=S, B=B, C=C)
    loss.forward(pred, target)
    d = loss.backward()
    obj = target[..., 4] > 0
    assert not np.any(d[~obj][:, 5 * B:])
    assert_close(d[obj][:, 5 * B:], 2 * (pred[obj][:, 5 * B:] - target[obj][:, 5:]) / 2, rtol=1e-14)
    assert loss.components["cls"] == pytest.approx(np.sum((pred[obj][:, 5 * B:] - target[obj][:, 5:]) ** 2) / 2)


def test_empty_cell_contents_are_ignored():
    pred, target = clear_assignment_case(seed=5)
    reference = YoloLoss(S=S, B=B, C=C).forward(pred, target)
    dirty = target.copy()
    empty = dirty[..., 4] == 0
    dirty[empty, :4] = (np.nan, -1.0, -0.5, np.inf)
    loss = YoloLoss(S=S, B=B, C=C)
    assert loss.forward(pred, dirty) == reference
    assert np.isfinite(loss.backward()).all()


def test_all_iou_zero_fallback_picks_smallest_error_and_ties_lowest_index():
    target = empty_target()
    put_object(target, 0, 0, 1, 0.2, 0.2, 0.04, 0.04, 2)            # a small box near the top-left
    pred = np.zeros((1, S, S, D))
    set_box(pred, 0, 0, 1, 0, 0.9, 0.9, 0.2, 0.2, 0.1)              # disjoint, error 0.98
    set_box(pred, 0, 0, 1, 1, 0.8, 0.5, 0.2, 0.2, 0.1)              # disjoint, error 0.45
    loss = YoloLoss(S=S, B=B, C=C)
    loss.forward(pred, target)
    assert loss.iou[0, 0, 1] == 0 and loss.responsible[0, 0, 1] == 1
    # Equal errors: the lower index.
    set_box(pred, 0, 0, 1, 0, 0.8, 0.5, 0.2, 0.2, 0.1)
    loss.forward(pred, target)
    assert loss.responsible[0, 0, 1] == 0
    # Any overlap beats a smaller squared error: IoU decides first.
    set_box(pred, 0, 0, 1, 0, 0.2, 0.2, 0.6, 0.6, 0.1)              # overlaps, error 0.32
    set_box(pred, 0, 0, 1, 1, 0.75, 0.2, 0.2, 0.2, 0.1)             # disjoint, error 0.3025
    loss.forward(pred, target)
    assert loss.iou[0, 0, 1] > 0 and loss.responsible[0, 0, 1] == 0


def test_border_object_lands_in_last_cell_and_perfect_pred_has_zero_coord_loss():
    s = 3
    target = encode_targets(np.array([[0.9, 0.4, 1.1, 0.6], [0.1, 0.9, 0.3, 1.1]]), np.array([0, 1]), s, C)
    assert target[1, 2, 4] == 1 and target[1, 2, 0] == pytest.approx(1.0)   # x = 1.0: column S − 1
    assert target[2, 0, 4] == 1 and target[2, 0, 1] == pytest.approx(1.0)   # y = 1.0: row S − 1
    pred = np.zeros((1, s, s, D))
    for i, j in [(1, 2), (2, 0)]:
        t = target[i, j]
        set_box(pred, 0, i, j, 0, t[0], t[1], np.sqrt(t[2]), np.sqrt(t[3]), 1.0)
        pred[0, i, j, 5 * B:] = t[5:]
    loss = YoloLoss(S=s, B=B, C=C)
    assert loss.forward(pred, target[None].astype(np.float64)) == pytest.approx(0.0, abs=1e-12)
    assert np.all(loss.iou[0][target[..., 4] > 0] == pytest.approx(1.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    pred, target = clear_assignment_case(seed=6)
    loss = YoloLoss(S=S, B=B, C=C)
    value = loss.forward(pred.astype(dtype), target.astype(np.float64))
    d = loss.backward()
    assert d.dtype == dtype and d.shape == pred.shape
    assert isinstance(value, float)
    reference = YoloLoss(S=S, B=B, C=C)
    assert value == pytest.approx(reference.forward(pred, target), rel=1e-5)
    assert_close(d, reference.backward(), rtol=1e-4, atol=1e-6)


def test_backward_before_forward_and_shape_errors():
    loss = YoloLoss(S=S, B=B, C=C)
    with pytest.raises(RuntimeError, match="YoloLoss"):
        loss.backward()
    with pytest.raises(ValueError, match=r"YoloLoss.*\(2, 2, 2, 12\)"):
        loss.forward(np.zeros((2, S, S, D - 1)), empty_target(2))
    with pytest.raises(ValueError, match="YoloLoss.*target"):
        loss.forward(np.zeros((2, S, S, D)), empty_target(1))
    with pytest.raises(ValueError, match="YoloLoss"):
        loss.forward(np.zeros((S, S, D)), empty_target(1)[0])


def test_cupy_matches_numpy():
    cp = pytest.importorskip("cupy")
    from minidet.backend import gpu_available
    if not gpu_available():
        pytest.skip("no GPU")
    pred, target = clear_assignment_case(seed=8)
    for dtype in (np.float32, np.float64):
        cpu = YoloLoss(S=S, B=B, C=C)
        value = cpu.forward(pred.astype(dtype), target)
        gpu = YoloLoss(S=S, B=B, C=C)
        assert gpu.forward(cp.asarray(pred.astype(dtype)), cp.asarray(target)) == pytest.approx(value, rel=1e-5)
        d = gpu.backward()
        assert isinstance(d, cp.ndarray) and d.dtype == dtype
        assert_close(d, cpu.backward(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_iou_goes_to_the_first_predictor_hand_computed(dtype):
    """Both predictors decode to the same box, conf 0.3 and 0.6: predictor 0 is responsible.
    Hand-computed: the truth is 0.25 × 0.25 of the image, each prediction 0.0625 × 0.0625
    (√w = 0.25) at the same centre, inside it, so IoU = (0.0625 / 0.25)² = 1/16; obj
    (1/16 − 0.3)², noobj 0.5 · 0.6², coord 5 · 2 · (0.25 − √0.25)², and the conf gradients
    2 (0.3 − IoU) and 2 · 0.5 · 0.6."""
    target = empty_target()
    put_object(target, 0, 1, 0, 0.5, 0.5, 0.25, 0.25, 1)             # truth: 0.25 × 0.25 of the image
    pred = np.zeros((1, S, S, D), dtype)
    for b, conf in ((0, 0.3), (1, 0.6)):
        set_box(pred, 0, 1, 0, b, 0.5, 0.5, 0.25, 0.25, conf)       # 0.0625 × 0.0625, same centre
    pred[0, 1, 0, 5 * B + 1] = 1.0                                  # the right class: no class loss
    loss = YoloLoss(S=S, B=B, C=C)
    value = loss.forward(pred, target.astype(dtype))
    iou = 0.0625 ** 2 / 0.25 ** 2                                   # inside the truth: area ratio
    assert loss.responsible[0, 1, 0] == 0
    assert_close(loss.iou[0, 1, 0], iou, rtol=1e-6)
    coord = 5.0 * 2 * (0.25 - 0.5) ** 2                             # sqrt_w, sqrt_h against √0.25
    expected = {"coord": coord, "obj": (iou - 0.3) ** 2, "noobj": 0.5 * 0.6 ** 2, "cls": 0.0}
    assert_close([loss.components[k] for k in expected], list(expected.values()), rtol=1e-6)
    assert_close(value, sum(expected.values()), rtol=1e-6)
    d = loss.backward()
    assert_close([d[0, 1, 0, 4], d[0, 1, 0, 9]], [2 * (0.3 - iou), 2 * 0.5 * 0.6], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_path_matches_vectorised_path(dtype):
    """YoloLoss(path="reference") runs the cell-by-cell loops of minidet.loss_cells: the same
    loss, components, responsible predictors and gradient as the vectorised path."""
    rng = np.random.default_rng(7)
    pred = rng.uniform(-0.4, 1.1, size=(3, S, S, 5 * B + C)).astype(dtype)
    target = empty_target(3)
    for n, i, j in ((0, 0, 0), (0, 1, 1), (1, 1, 0), (2, 0, 1)):
        put_object(target, n, i, j, *rng.uniform(0.05, 0.95, size=4), cls=int(rng.integers(C)))
    target = target.astype(dtype)
    vec, ref = YoloLoss(S, B, C, path="vectorised"), YoloLoss(S, B, C, path="reference")
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    assert_close(ref.forward(pred, target), vec.forward(pred, target), **tol, name="loss")
    for name in ("coord", "obj", "noobj", "cls"):
        assert_close(ref.components[name], vec.components[name], **tol, name=name)
    np.testing.assert_array_equal(ref.responsible, vec.responsible)
    dpred = ref.backward()
    assert dpred.dtype == dtype
    assert_close(dpred, vec.backward(), **tol, name="dpred")


def test_path_is_checked():
    with pytest.raises(ValueError, match="path must be one of"):
        YoloLoss(path="fast")
    pred, target = np.zeros((1, S, S, 5 * B + C)), empty_target()
    with pytest.raises(ValueError, match="vectorised path only"):
        YoloLoss(S, B, C, path="reference").forward(pred, target, assignment=assign(pred, target, B))
