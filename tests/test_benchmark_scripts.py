"""The figures the study scripts in benchmarks/ print come from library logic checked here
(benchmarks/map_breakdown.py prints minidet.breakdown's figures)."""
import numpy as np
import pytest

from minidet.breakdown import breakdown, describe_breakdown


def _truths():
    # Image 0: a small object (side 0.1) of class 0 and a large one (side 0.6) of class 1.
    return [(np.array([[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.9, 0.9]], np.float32), np.array([0, 1]),
             np.zeros(2, bool))]


def test_breakdown_perfect_detections():
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes, np.array([0.9, 0.8], np.float32), labels)], _truths(), num_classes=2)
    assert r["mAP"] == pytest.approx(1.0)
    assert r["class_agnostic_AP"] == pytest.approx(1.0)
    assert r["covered"] == 1.0 and r["class_right_when_covered"] == 1.0
    counts = {(lo, hi): n for lo, hi, n, _ in r["by_size"]}
    assert counts[(0.0, 0.15)] == 1 and counts[(0.40, float("inf"))] == 1 and sum(counts.values()) == 2


def test_breakdown_finds_the_right_boxes_with_the_wrong_classes():
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes, np.array([0.9, 0.8], np.float32), 1 - labels)], _truths(), num_classes=2)
    assert r["mAP"] == 0.0
    assert r["class_agnostic_AP"] == pytest.approx(1.0)
    assert r["covered"] == 1.0 and r["class_right_when_covered"] == 0.0


def test_breakdown_by_size_counts_only_its_band():
    # Only the large object is found: the small band scores 0, the large band 1.
    boxes, labels, _ = _truths()[0]
    r = breakdown([(boxes[1:], np.array([0.8], np.float32), labels[1:])], _truths(), num_classes=2)
    by = {(lo, hi): m for lo, hi, _, m in r["by_size"]}
    assert by[(0.0, 0.15)] == 0.0 and by[(0.40, float("inf"))] == pytest.approx(1.0)
    assert r["covered"] == 0.5


def test_describe_breakdown_prints_every_band():
    boxes, labels, _ = _truths()[0]
    text = describe_breakdown(breakdown([(boxes, np.array([0.9, 0.8], np.float32), labels)], _truths(), 2), "test")
    assert text.splitlines()[0] == "test mAP@0.5: 1.000"
    assert "[0.00, 0.15) of the image side:    1, mAP@0.5 1.000" in text
    assert "[0.40, inf) of the image side:    1, mAP@0.5 1.000" in text
    assert "covered at IoU >= 0.5 by a detection scoring > 0.05: 1.00; its class right: 1.00" in text


def test_head_study_table_and_refusal():
    from minidet.course.head_study import describe_head_study, head_run

    assert describe_head_study({"fc": [0.02, 0.1], "conv": [0.345]}).splitlines() == [
        "val mAP@0.5 per epoch", "  fc: 0.020 0.100", "conv: 0.345"]
    with pytest.raises(ValueError, match="unknown head 'dense'"):
        head_run("dense", epochs=1, lr=1e-2, warmup_epochs=0, seed=0)


def _benchmark_module(name):
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_profile_step_times_every_layer_and_counts_conv_flops():
    from minidet.models import reduced_fast_yolo

    prof = _benchmark_module("profile_step")
    model = reduced_fast_yolo(112, 0.0625)
    x = np.random.default_rng(0).random((2, 3, 112, 112), dtype=np.float32)
    rows, t_loss, t_sgd = prof.profile(model, x, prof.random_targets(2, model.S, model.C), repeats=1)
    assert len(rows) == len(model.layers) and t_loss > 0 and t_sgd > 0
    assert all(f > 0 and b >= 0 for f, b, _ in rows)
    assert rows[-1][2] == (2, model.S, model.S, 5 * model.B + model.C)
    first = model.layers[0]   # 3 -> c channels, 3×3, on 112×112, batch 2
    assert prof.conv_flops(first, rows[0][2]) == 2.0 * first.out_channels * 3 * 9 * 2 * 112 * 112


def test_bench_cpu_times_pytorch_in_a_process_of_its_own():
    pytest.importorskip("torch")
    bench = _benchmark_module("bench_cpu")
    ms, threads = bench.torch_in_subprocess("112:0.0625:2", "step", blocks=1, repeats=1)
    assert ms > 0 and threads >= 1
