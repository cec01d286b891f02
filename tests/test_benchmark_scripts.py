"""The figures the study scripts in benchmarks/ print come from logic checked here."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minidet.loss import YoloLoss
from minidet.models import reduced_fast_yolo

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def breakdown():
    return _script("map_breakdown").breakdown


def _truths():
    # Image 0: a small object (side 0.1) of class 0 and a large one (side 0.6) of class 1.
    return [(np.array([[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.9, 0.9]], np.float32), np.array([0, 1]),
             np.zeros(2, bool))]


def test_breakdown_perfect_detections(breakdown):
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes, np.array([0.9, 0.8], np.float32), labels)], _truths(), num_classes=2)
    assert r["mAP"] == pytest.approx(1.0)
    assert r["class_agnostic_AP"] == pytest.approx(1.0)
    assert r["covered"] == 1.0 and r["class_right_when_covered"] == 1.0
    counts = {(lo, hi): n for lo, hi, n, _ in r["by_size"]}
    assert counts[(0.0, 0.15)] == 1 and counts[(0.40, 1.01)] == 1 and sum(counts.values()) == 2


def test_breakdown_finds_the_right_boxes_with_the_wrong_classes(breakdown):
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes, np.array([0.9, 0.8], np.float32), 1 - labels)], _truths(), num_classes=2)
    assert r["mAP"] == 0.0
    assert r["class_agnostic_AP"] == pytest.approx(1.0)
    assert r["covered"] == 1.0 and r["class_right_when_covered"] == 0.0


def test_breakdown_by_size_counts_only_its_band(breakdown):
    # Only the large object is found: the small band scores 0, the large band 1.
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes[1:], np.array([0.8], np.float32), labels[1:])], _truths(), num_classes=2)
    by = {(lo, hi): m for lo, hi, _, m in r["by_size"]}
    assert by[(0.0, 0.15)] == 0.0 and by[(0.40, 1.01)] == pytest.approx(1.0)
    assert r["covered"] == 0.5


def test_conv_head_detector_reads_the_1x1_output_as_the_grid():
    study = _script("head_study")
    model = reduced_fast_yolo(14, 0.05, C=3, seed=1)  # 14 = 7·2: one max-pool, a 7×7 grid
    det = study.ConvHeadDetector(model, seed=2)
    x = np.random.default_rng(0).random((2, 3, 14, 14), dtype=np.float32)
    grid = det.forward(x)
    assert grid.shape == (2, 7, 7, 5 * 2 + 3)
    channels_first = det.net.forward(x)  # the 1×1 convolution's (N, 5B + C, S, S)
    np.testing.assert_array_equal(grid, channels_first.transpose(0, 2, 3, 1))
    # backward takes the grid's gradient back to the 1×1 layer's layout: the weight
    # gradient must equal the one computed from the channels-first gradient directly.
    target = np.zeros((2, 7, 7, 5 + 3), np.float32)
    target[0, 3, 4] = [0.5, 0.5, 0.3, 0.3, 1, 0, 1, 0]
    loss = YoloLoss(S=7, B=2, C=3)
    loss.forward(grid, target)
    dgrid = loss.backward()
    det.backward(dgrid)
    head = det.net.layers[-1]
    got = head.grads["W"].copy()
    det.net.forward(x)
    det.net.backward(np.ascontiguousarray(dgrid.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got, head.grads["W"], rtol=1e-6)
    assert np.abs(got).sum() > 0
