"""`minidet train --model ssd` and the SSD checkpoint in `eval` / `detect`: a run, an exact
resume, the same evaluation as the library's, and one-line refusals across model kinds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minidet.data import BatchLoader, VOCDataset
from minidet.inference import evaluate_loader
from minidet.models import SSDModel, load, load_checkpoint
from minidet.ssd.task import SSD_LR, SSDTargets, SSDTrainingLoss
from minidet.train import TrainConfig, train

from test_cli import assert_one_line_error, image_file, run

pytestmark = pytest.mark.usefixtures("isolated_cache")

TINY_SSD = ["--model", "ssd", "--input-size", "56", "--width", "0.0625", "--batch-size", "8", "--epochs", "2",
            "--workers", "1", "--quiet"]


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def ssd_run(tiny_voc, tmp_path_factory):
    """`minidet train --model ssd` on tiny_voc for 2 epochs: its run directory."""
    import contextlib
    import io

    from minidet.cli import main

    base = tmp_path_factory.mktemp("ssd_run")
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("XDG_CACHE_HOME", str(base / "cache"))
        main(["train", "--data", str(tiny_voc), *TINY_SSD, "--out", str(out)])
    return out


def test_ssd_run_writes_its_files_and_records_the_architecture(ssd_run):
    for name in ("last.npz", "best.npz", "metrics.json", "loss.png", "map.png", "detections.png"):
        assert (ssd_run / name).is_file(), name
    model, meta = load_checkpoint(ssd_run / "last.npz")
    assert isinstance(model, SSDModel)
    assert model.arch == {"name": "ssd_lite", "kwargs": dict(input_size=56, width=0.0625, C=20, seed=0, batch_norm=True)}
    assert meta["config"]["model"] == "ssd" and meta["config"]["head"] is None
    assert meta["config"]["lr"] == SSD_LR and TrainConfig().lr == 1e-2   # each model's default
    history = json.loads((ssd_run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["loss"]) and h["loss"] == pytest.approx(h["loc"] + h["conf"]) for h in history)


def test_ssd_resume_continues_exactly(tmp_path, tiny_voc, ssd_run, capsys):
    out = tmp_path / "run"
    config = TrainConfig(data=str(tiny_voc), model="ssd", input_size=56, width=0.0625, batch_size=8, epochs=2,
                         workers=1, out=str(out))

    def log(line):
        if line.startswith("epoch 1/"):
            raise Stop(line)

    with pytest.raises(Stop):
        train(config, log=log, progress=False)
    code, _, err = run(capsys, "train", "--resume", out / "last.npz", "--quiet", "--workers", "1")
    assert code == 0, err
    a, meta_a = load_checkpoint(ssd_run / "last.npz")
    b, meta_b = load_checkpoint(out / "last.npz")
    for (name, p, _, k), (_, q, _, _) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p[k], q[k]), name
    for k in meta_a["optimizer"]:
        assert np.array_equal(meta_a["optimizer"][k], meta_b["optimizer"][k]), k
    keys = ("epoch", "step", "lr", "loss", "loc", "conf", "val_mAP")
    assert [[h[k] for k in keys] for h in meta_a["history"]] == [[h[k] for k in keys] for h in meta_b["history"]]


def test_eval_and_detect_on_an_ssd_checkpoint(tmp_path, capsys, tiny_voc, ssd_run):
    weights = ssd_run / "best.npz"
    out = tmp_path / "eval.json"
    code, stdout, err = run(capsys, "eval", "--weights", weights, "--data", tiny_voc, "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text())
    model = load(weights)
    with BatchLoader(VOCDataset(tiny_voc, "test"), 8, model.input_size, workers=1) as loader:
        expected, detections, _ = evaluate_loader(model, loader)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert sum(len(d[0]) for d in detections) > 0
    image = image_file(tiny_voc, "test", 0)
    code, stdout, err = run(capsys, "detect", "--weights", weights, image, "--out", tmp_path / "dets")
    assert code == 0, err
    assert len(list((tmp_path / "dets").glob("*.png"))) == 1 and str(image) in stdout


def test_resume_across_model_kinds_is_one_line(tmp_path, capsys, tiny_run, ssd_run):
    yolo_last, ssd_last = tiny_run[0] / "last.npz", ssd_run / "last.npz"
    code, _, err = run(capsys, "train", "--resume", yolo_last, "--model", "ssd", "--quiet", "--out", tmp_path / "a")
    assert_one_line_error(code, err, yolo_last, "model")
    code, _, err = run(capsys, "train", "--resume", ssd_last, "--model", "reduced", "--quiet", "--out", tmp_path / "b")
    assert_one_line_error(code, err, ssd_last, "model")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


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
