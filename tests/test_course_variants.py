"""The long exercises' measured answers (minidet/course/variants.py): the runner changes what it
says it changes, and the committed record was measured with chapter 7's current quick settings."""
import json
import math
import re

import numpy as np
import pytest

from minidet.course import variants
from minidet.course.book import DEFAULT_NOTEBOOKS
from minidet.data import generate
from minidet.train import TrainConfig


def _chapter7_source() -> str:
    nb = json.loads((DEFAULT_NOTEBOOKS / "07_training_a_reduced_fast_yolo.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_quick_settings_are_chapter_7s():
    src = _chapter7_source()

    def quick(name):
        found = re.search(rf"^{name}\s*=\s*([0-9.]+) if QUICK\b", src, re.MULTILINE)
        assert found, f"chapter 7 sets {name} in its quick settings"
        return float(found.group(1))

    q = variants.QUICK
    assert (quick("TRAIN_IMAGES"), quick("WIDTH"), quick("EPOCHS"), quick("BATCH"), quick("WARMUP_EPOCHS")) == \
        (q["train_images"], q["width"], q["epochs"], q["batch_size"], q["warmup_epochs"])
    sizes = re.search(r'sizes=\{"train": TRAIN_IMAGES, "val": (\d+), "test": (\d+)\}', src)
    assert sizes and (int(sizes.group(1)), int(sizes.group(2))) == (q["val_images"], q["test_images"])


def test_the_record_was_measured_with_these_settings():
    """A changed quick setting or variant makes the printed ranges stale: measure again."""
    record = json.loads(variants.RECORD.read_text())
    assert record["quick"] == variants.QUICK
    assert record["variants"] == variants.VARIANTS
    assert set(record["runs"]) == set(variants.VARIANTS)
    for name, runs in record["runs"].items():
        assert len(runs) >= 3, f"{name}: a range needs at least 3 seeds"
        for run in runs:
            assert all(math.isfinite(run[k]) for k in ("mAP", "seconds", *variants.TERMS, "empty_conf"))
            assert run["steps"] == variants.QUICK["epochs"] * (variants.QUICK["train_images"]
                                                               // variants.QUICK["batch_size"])
    table = variants.summary(record)
    assert all(name in table for name in variants.VARIANTS) and record["command"] in table


def test_empty_cell_confidence_by_hand():
    pred = np.zeros((1, 2, 2, 12))
    target = np.zeros((1, 2, 2, 7))
    target[0, 0, 0, 4] = 1                         # one cell holds an object
    pred[0, 0, 0, [4, 9]] = 5.0                    # its confidences do not count
    pred[0, 1, 1, 4], pred[0, 1, 1, 9] = 0.3, 0.1  # 3 empty cells × 2 predictors: 6 values
    assert variants.empty_cell_confidence(pred, target, B=2) == pytest.approx(0.4 / 6)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), images=60, seed=1, image_size=64)


def test_quick_run_applies_the_change_it_is_given(tiny_root):
    base = variants.quick_run(tiny_root, seed=0, epochs=1)
    assert base["steps"] == 1 and base["noobj"] > 0 and 0 <= base["mAP"] <= 1
    assert variants.quick_run(tiny_root, seed=0, epochs=1, lambda_noobj=0.0)["noobj"] == 0
    same = variants.quick_run(tiny_root, seed=0, epochs=1)
    assert same["loss"] == base["loss"]                        # deterministic for a seed
    assert variants.quick_run(tiny_root, seed=0, epochs=1, augment=False)["loss"] != base["loss"]
    coord5 = variants.quick_run(tiny_root, seed=0, epochs=1, lambda_coord=5.0)
    # One step: the loss is measured before the update, on the same weights and batch.
    assert coord5["cls"] == pytest.approx(base["cls"])
    assert coord5["coord"] == pytest.approx(base["coord"] * 5.0 / TrainConfig().lambda_coord)
