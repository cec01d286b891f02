"""Error analysis (the YOLO paper's Figure 4): hand-made detections, one per category, the
top-N rule, the groups of similar classes, and `minidet analyze` on a checkpoint."""
import numpy as np
import pytest

from minidet.analysis import CATEGORIES, analyze, class_groups
from minidet.errors import MinidetError

from helpers import assert_one_line_error, run

NAMES = ["red_circle", "blue_circle", "red_square"]
GROUPS = class_groups(NAMES)            # circles together, the square alone
TRUTH = np.array([[0.0, 0.0, 0.4, 0.4]])


def one_image(det_boxes, det_labels, truth_labels, truth_boxes=TRUTH, scores=None):
    det_boxes = np.asarray(det_boxes, dtype=float).reshape(-1, 4)
    scores = np.linspace(0.9, 0.5, len(det_boxes)) if scores is None else np.asarray(scores, dtype=float)
    return [(det_boxes, scores, np.asarray(det_labels))], [(truth_boxes, np.asarray(truth_labels), None)]


def category_of(box, label, truth_label):
    """The category of one detection of class `label` against one truth of class `truth_label`:
    the detection's class has truths elsewhere (a far-away second image) so that it is sorted."""
    dets, gts = one_image([box], [label], [truth_label])
    dets.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)))
    gts.append((np.array([[0.9, 0.9, 1.0, 1.0]]), np.array([label]), None))
    result = analyze(dets, gts, GROUPS)
    assert result["total"] == 1
    return next(k for k in CATEGORIES if result["counts"][k] == 1)


def test_groups_from_names_voc_and_a_declared_file(tmp_path):
    assert GROUPS == ["circle", "circle", "square"]
    assert class_groups(["cat", "dog", "car", "person"]) == ["animal", "animal", "vehicle", None]
    assert class_groups(["a", "b"]) == [None, None]
    (tmp_path / "groups.txt").write_text("a fruit\nb fruit\n")
    assert class_groups(["a", "b", "c"], tmp_path) == ["fruit", "fruit", None]
    (tmp_path / "groups.txt").write_text("zebra fruit\n")
    with pytest.raises(MinidetError, match="groups.txt: line 1"):
        class_groups(["a", "b"], tmp_path)


@pytest.mark.parametrize("box, label, truth_label, expected", [
    ([0.0, 0.0, 0.4, 0.38], 0, 0, "Correct"),           # IoU 0.95, right class
    ([0.0, 0.0, 0.4, 0.16], 0, 0, "Localization"),      # IoU 0.4
    ([0.2, 0.2, 0.6, 0.6], 0, 0, "Localization"),       # IoU 0.14
    ([0.0, 0.0, 0.4, 0.38], 1, 0, "Similar"),           # a blue circle on a red one
    ([0.0, 0.0, 0.4, 0.16], 2, 0, "Other"),             # a square on a circle, IoU 0.4
    ([0.0, 0.0, 0.4, 0.38], 0, 2, "Other"),             # a circle on a square
    ([0.3, 0.3, 0.7, 0.7], 0, 0, "Background"),        # IoU 0.03 < 0.1
    ([0.6, 0.6, 0.9, 0.9], 1, 0, "Background"),        # no overlap at all
])
def test_each_category(box, label, truth_label, expected):
    assert category_of(box, label, truth_label) == expected


def test_a_duplicate_is_a_localization_error_and_only_the_top_n_count():
    # One truth of class 0, three detections of class 0 on it: only the best one is sorted.
    dets, gts = one_image([[0, 0, 0.4, 0.4], [0, 0, 0.4, 0.39], [0, 0, 0.4, 0.38]], [0, 0, 0], [0])
    result = analyze(dets, gts, GROUPS)
    assert result["counts"]["Correct"] == 1 and result["total"] == 1
    # Two truths: the top two detections, the second a duplicate of the first's truth.
    truths = np.array([[0, 0, 0.4, 0.4], [0.6, 0.6, 1.0, 1.0]])
    dets, gts = one_image([[0, 0, 0.4, 0.4], [0, 0, 0.4, 0.39], [0.6, 0.6, 1, 1]], [0, 0, 0], [0, 0], truths,
                          scores=[0.9, 0.8, 0.7])
    result = analyze(dets, gts, GROUPS)
    assert result["per_class"][0] == {"Correct": 1, "Localization": 1, "Similar": 0, "Other": 0, "Background": 0}
    assert result["percent"]["Correct"] == pytest.approx(50.0)


def test_difficult_truths_are_left_out_and_bad_input_is_refused():
    dets = [(np.array([[0, 0, 0.4, 0.4]]), np.array([0.9]), np.array([0]))]
    gts = [(TRUTH, np.array([0]), np.array([True]))]
    assert analyze(dets, gts, GROUPS)["total"] == 0
    with pytest.raises(ValueError, match="analyze: detections and ground_truths"):
        analyze(dets, [], GROUPS)


@pytest.mark.usefixtures("isolated_cache")
def test_analyze_command_prints_the_five_categories_and_draws_the_chart(tmp_path, capsys, tiny_voc, tiny_run):
    chart = tmp_path / "chart.png"
    code, out, err = run(capsys, "analyze", "--weights", tiny_run[0] / "best.npz", "--data", tiny_voc,
                         "--out", chart)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    percents = [float(row[1]) for row in rows if row[:1] and row[0] in CATEGORIES]
    assert len(percents) == 5 and (sum(percents) == pytest.approx(100, abs=0.3) or sum(percents) == 0)
    assert chart.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "analyze", "--weights", tiny_run[0] / "best.npz", "--data", tiny_voc, "--out", chart)
    assert_one_line_error(code, err, "chart.png")
    code, _, err = run(capsys, "analyze", "--weights", tmp_path / "none.npz", "--data", tiny_voc)
    assert_one_line_error(code, err, "none.npz")
