"""The figures the study scripts in benchmarks/ print come from logic checked here."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest


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
