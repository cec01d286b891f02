"""`minidet train --model ssd` and the SSD checkpoint in `eval` / `detect`: a run, an exact
resume, the same evaluation as the library's, and one-line refusals across model kinds."""
from __future__ import annotations


import numpy as np
import pytest

from minidet.models import SSDModel, load
from minidet.ssd.task import SSD_LR, SSDTargets, SSDTrainingLoss
from minidet.train import TrainConfig

from helpers import (assert_eval_and_detect, assert_one_line_error, assert_resume_refused_across, assert_same_run,
                     interrupted_and_resumed, run, run_files, tiny_args)

pytestmark = pytest.mark.usefixtures("isolated_cache")

TINY_SSD = tiny_args("ssd")


def test_ssd_run_writes_its_files_and_records_the_architecture(ssd_run):
    model, meta, history = run_files(ssd_run)
    assert isinstance(model, SSDModel)
    assert model.arch == {"name": "ssd_lite", "kwargs": dict(input_size=56, width=0.0625, C=20, seed=0, batch_norm=True)}
    assert meta["config"]["model"] == "ssd" and meta["config"]["head"] is None
    assert meta["config"]["lr"] == SSD_LR and TrainConfig().lr == 1e-2   # each model's default
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["loss"]) and h["loss"] == pytest.approx(h["loc"] + h["conf"]) for h in history)


def test_ssd_resume_continues_exactly(tmp_path, tiny_voc, ssd_run, capsys):
    resumed = interrupted_and_resumed(capsys, tiny_voc, tmp_path / "run", "ssd")
    assert_same_run(ssd_run, resumed, ("epoch", "step", "lr", "loss", "loc", "conf", "val_mAP"))


def test_eval_and_detect_on_an_ssd_checkpoint(tmp_path, capsys, tiny_voc, ssd_run):
    detections = assert_eval_and_detect(capsys, tmp_path, tiny_voc, ssd_run / "best.npz")
    assert sum(len(d[0]) for d in detections) > 0


def test_resume_across_model_kinds_is_one_line(tmp_path, capsys, tiny_run, ssd_run):
    assert_resume_refused_across(capsys, tmp_path, tiny_run[0] / "last.npz", "reduced", ssd_run / "last.npz", "ssd")


@pytest.mark.parametrize("option, word", [(["--head", "conv"], "--head"), (["--pretrain-epochs", "1"], "--pretrain"),
                                          (["--batch-size", "1"], "--batch-size")])
def test_yolo_only_settings_are_refused_for_ssd(tmp_path, capsys, tiny_voc, option, word):
    code, _, err = run(capsys, "train", "--data", tiny_voc, *TINY_SSD, *option, "--out", tmp_path / "run")
    assert_one_line_error(code, err, word, "ssd")
    assert not (tmp_path / "run").exists()


def test_yolo_only_library_path_names_the_model(ssd_run):
    """The YOLO decoder, given an SSD output, names what it expected and what it got."""
    from minidet.boxes import decode

    model = load(ssd_run / "best.npz").eval()   # eval: BatchNorm on the 1×1 map needs N > 1 in training
    output = model.forward(np.zeros((1, 3, 56, 56), np.float32))
    with pytest.raises(ValueError, match="decode: pred must have shape"):
        decode(output[1])


def test_targets_round_trip_through_the_training_loss():
    from minidet.ssd import MultiboxLoss, default_boxes, match

    priors = default_boxes([4, 2], [0.2, 0.5, 0.8], [[2], [2]])
    boxes, labels = np.array([[0.1, 0.1, 0.5, 0.6]], np.float32), np.array([3])
    target = SSDTargets(priors)(boxes, labels)
    loc_t, conf_t = match(boxes, labels, priors)
    assert target.shape == (len(priors), 5) and target.dtype == np.float32
    assert np.array_equal(target[:, 4].astype(np.int64), conf_t)
    rng = np.random.default_rng(0)
    loc, conf = rng.standard_normal((1, len(priors), 4)), rng.standard_normal((1, len(priors), 21))
    got = SSDTrainingLoss().forward((loc, conf), target[None])
    want = MultiboxLoss().forward(loc, conf, loc_t[None].astype(np.float32).astype(np.float64), conf_t[None])
    assert got == pytest.approx(want, rel=1e-12)
