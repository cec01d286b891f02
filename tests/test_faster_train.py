"""`minidet train --model faster` and its checkpoints in `eval` / `detect`: a run, an exact
resume (the loss's sampling generator included), the library's evaluation, and one-line
refusals across detector families."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minidet.data import BatchLoader, VOCDataset
from minidet.inference import evaluate_loader
from minidet.models import FasterRCNN, load, load_checkpoint
from minidet.rcnn.task import FASTER_LR
from minidet.train import TrainConfig, train

from helpers import assert_one_line_error, run
from test_cli import image_file

pytestmark = pytest.mark.usefixtures("isolated_cache")

TINY_FASTER = ["--model", "faster", "--input-size", "56", "--width", "0.0625", "--batch-size", "8", "--epochs", "2",
               "--workers", "1", "--quiet"]


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def faster_run(tiny_voc, tmp_path_factory):
    """`minidet train --model faster` on tiny_voc for 2 epochs: its run directory."""
    import contextlib
    import io

    from minidet.cli import main

    base = tmp_path_factory.mktemp("faster_run")
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("XDG_CACHE_HOME", str(base / "cache"))
        main(["train", "--data", str(tiny_voc), *TINY_FASTER, "--out", str(out)])
    return out


def test_faster_run_writes_its_files_and_records_the_architecture(faster_run):
    for name in ("last.npz", "best.npz", "metrics.json", "loss.png", "map.png", "detections.png"):
        assert (faster_run / name).is_file(), name
    model, meta = load_checkpoint(faster_run / "last.npz")
    assert isinstance(model, FasterRCNN)
    assert model.arch == {"name": "faster_rcnn", "kwargs": dict(input_size=56, width=0.0625, C=20, seed=0)}
    assert meta["config"]["model"] == "faster" and meta["config"]["head"] is None
    assert meta["config"]["lr"] == FASTER_LR and "loss_rng" in meta
    history = json.loads((faster_run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    parts = ("rpn_cls", "rpn_box", "cls", "box")
    assert all(h["loss"] == pytest.approx(sum(h[k] for k in parts)) for h in history)


def test_faster_resume_continues_exactly(tmp_path, tiny_voc, faster_run, capsys):
    out = tmp_path / "run"
    config = TrainConfig(data=str(tiny_voc), model="faster", input_size=56, width=0.0625, batch_size=8, epochs=2,
                         workers=1, out=str(out))

    def log(line):
        if line.startswith("epoch 1/"):
            raise Stop(line)

    with pytest.raises(Stop):
        train(config, log=log, progress=False)
    code, _, err = run(capsys, "train", "--resume", out / "last.npz", "--quiet", "--workers", "1")
    assert code == 0, err
    a, meta_a = load_checkpoint(faster_run / "last.npz")
    b, meta_b = load_checkpoint(out / "last.npz")
    for (name, p, _, k), (_, q, _, _) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p[k], q[k]), name
    for k in meta_a["optimizer"]:
        assert np.array_equal(meta_a["optimizer"][k], meta_b["optimizer"][k]), k
    assert meta_a["loss_rng"] == meta_b["loss_rng"]
    keys = ("epoch", "step", "lr", "loss", "rpn_cls", "rpn_box", "cls", "box", "val_mAP")
    assert [[h[k] for k in keys] for h in meta_a["history"]] == [[h[k] for k in keys] for h in meta_b["history"]]


def test_eval_and_detect_on_a_faster_checkpoint(tmp_path, capsys, tiny_voc, faster_run):
    weights = faster_run / "best.npz"
    out = tmp_path / "eval.json"
    code, stdout, err = run(capsys, "eval", "--weights", weights, "--data", tiny_voc, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text())
    model = load(weights)
    with BatchLoader(VOCDataset(tiny_voc, "test"), 8, model.input_size, workers=1) as loader:
        expected, detections, _ = evaluate_loader(model, loader)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    image = image_file(tiny_voc, "test", 0)
    code, stdout, err = run(capsys, "detect", "--weights", weights, image, "--out", tmp_path / "dets",
                            "--threshold", "0.01")
    assert code == 0, err
    assert len(list((tmp_path / "dets").glob("*.png"))) == 1 and str(image) in stdout


def test_resume_across_families_is_one_line(tmp_path, capsys, tiny_run, faster_run):
    yolo_last, faster_last = tiny_run[0] / "last.npz", faster_run / "last.npz"
    code, _, err = run(capsys, "train", "--resume", yolo_last, "--model", "faster", "--quiet", "--out", tmp_path / "a")
    assert_one_line_error(code, err, yolo_last, "model")
    code, _, err = run(capsys, "train", "--resume", faster_last, "--model", "ssd", "--quiet", "--out", tmp_path / "b")
    assert_one_line_error(code, err, faster_last, "model")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("option, word", [(["--head", "conv"], "--head"), (["--pretrain-epochs", "1"], "--pretrain")])
def test_yolo_only_settings_are_refused_for_faster(tmp_path, capsys, tiny_voc, option, word):
    code, _, err = run(capsys, "train", "--data", tiny_voc, *TINY_FASTER, *option, "--out", tmp_path / "run")
    assert_one_line_error(code, err, word, "faster")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family, arch", [("fast-rcnn", "fast_rcnn_ss"), ("rcnn", "crop_rcnn")])
def test_selective_search_families_train_resume_exactly_and_evaluate(tmp_path, capsys, tiny_voc, family, arch):
    """`--model fast-rcnn` and `--model rcnn`: trained without augmentation (recorded), resumed to
    the same weights, evaluated; a resume as another family is refused in one line."""
    args = ["--data", tiny_voc, "--model", family, "--input-size", "56", "--width", "0.0625", "--batch-size",
            "8", "--epochs", "2", "--workers", "1", "--quiet"]
    code, _, err = run(capsys, "train", *args, "--out", tmp_path / "full")
    assert code == 0, err
    config = TrainConfig(data=str(tiny_voc), model=family, input_size=56, width=0.0625, batch_size=8, epochs=2,
                         workers=1, out=str(tmp_path / "cut"))

    def log(line):
        if line.startswith("epoch 1/"):
            raise Stop(line)

    with pytest.raises(Stop):
        train(config, log=log, progress=False)
    code, _, err = run(capsys, "train", "--resume", tmp_path / "cut" / "last.npz", "--quiet", "--workers", "1")
    assert code == 0, err
    a, meta_a = load_checkpoint(tmp_path / "full" / "last.npz")
    b, meta_b = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert a.arch["name"] == arch and meta_a["config"]["augment"] is False
    for (name, p, _, k), (_, q, _, _) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p[k], q[k]), name
    assert [h["loss"] for h in meta_a["history"]] == [h["loss"] for h in meta_b["history"]]
    code, out, err = run(capsys, "eval", "--weights", tmp_path / "full" / "best.npz", "--data", tiny_voc)
    assert code == 0 and "mAP@0.5" in out, err
    code, _, err = run(capsys, "train", "--resume", tmp_path / "full" / "last.npz", "--model", "faster", "--quiet",
                       "--out", tmp_path / "other")
    assert_one_line_error(code, err, "last.npz", "model")
