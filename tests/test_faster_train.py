"""`minidet train --model faster` and its checkpoints in `eval` / `detect`: a run, an exact
resume (the loss's sampling generator included), the library's evaluation, and one-line
refusals across detector families."""
from __future__ import annotations


import pytest

from minidet.models import FasterRCNN
from minidet.rcnn.task import FASTER_LR

from helpers import (assert_eval_and_detect, assert_one_line_error, assert_resume_refused_across, assert_same_run,
                     interrupted_and_resumed, run, run_files, tiny_args)

pytestmark = pytest.mark.usefixtures("isolated_cache")

TINY_FASTER = tiny_args("faster")


def test_faster_run_writes_its_files_and_records_the_architecture(faster_run):
    model, meta, history = run_files(faster_run)
    assert isinstance(model, FasterRCNN)
    assert model.arch == {"name": "faster_rcnn", "kwargs": dict(input_size=56, width=0.0625, C=20, seed=0)}
    assert meta["config"]["model"] == "faster" and meta["config"]["head"] is None
    assert meta["config"]["lr"] == FASTER_LR and "loss_rng" in meta
    assert [h["epoch"] for h in history] == [1, 2]
    parts = ("rpn_cls", "rpn_box", "cls", "box")
    assert all(h["loss"] == pytest.approx(sum(h[k] for k in parts)) for h in history)


def test_faster_resume_continues_exactly(tmp_path, tiny_voc, faster_run, capsys):
    resumed = interrupted_and_resumed(capsys, tiny_voc, tmp_path / "run", "faster")
    assert_same_run(faster_run, resumed, ("epoch", "step", "lr", "loss", "rpn_cls", "rpn_box", "cls", "box", "val_mAP"),
                    meta_keys=("loss_rng",))


def test_eval_and_detect_on_a_faster_checkpoint(tmp_path, capsys, tiny_voc, faster_run):
    assert_eval_and_detect(capsys, tmp_path, tiny_voc, faster_run / "best.npz", "--threshold", "0.01")


def test_resume_across_families_is_one_line(tmp_path, capsys, tiny_run, faster_run):
    assert_resume_refused_across(capsys, tmp_path, tiny_run[0] / "last.npz", "reduced", faster_run / "last.npz", "faster")


@pytest.mark.parametrize("option, word", [(["--head", "conv"], "--head"), (["--pretrain-epochs", "1"], "--pretrain")])
def test_yolo_only_settings_are_refused_for_faster(tmp_path, capsys, tiny_voc, option, word):
    code, _, err = run(capsys, "train", "--data", tiny_voc, *TINY_FASTER, *option, "--out", tmp_path / "run")
    assert_one_line_error(code, err, word, "faster")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family, arch", [("fast-rcnn", "fast_rcnn_ss"), ("rcnn", "crop_rcnn")])
def test_selective_search_families_train_resume_exactly_and_evaluate(tmp_path, capsys, tiny_voc, family, arch):
    """`--model fast-rcnn` and `--model rcnn`: trained without augmentation (recorded), resumed to
    the same weights, evaluated; a resume as another family is refused in one line."""
    code, _, err = run(capsys, "train", "--data", tiny_voc, *tiny_args(family), "--out", tmp_path / "full")
    assert code == 0, err
    resumed = interrupted_and_resumed(capsys, tiny_voc, tmp_path / "cut", family)
    a, meta_a = assert_same_run(tmp_path / "full", resumed)
    assert a.arch["name"] == arch and meta_a["config"]["augment"] is False
