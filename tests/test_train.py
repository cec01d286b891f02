"""The trainer: a resumed run continues exactly, a diverging run stops cleanly, the recipe learns."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

import minidet.families as families
import minidet.train as train_module
from minidet.boxes import encode_targets
from minidet.cli import main
from minidet.data import BatchLoader, VOCDataset
from minidet.eval import evaluate
from minidet.inference import predict
from minidet.layers import Dropout
from minidet.loss import YoloLoss
from minidet.models import load_checkpoint, reduced_fast_yolo
from minidet.optim import SGD
from minidet.train import TrainConfig, TrainingDiverged, train

from helpers import Stop, stop_after_epoch, tiny_config

pytestmark = pytest.mark.usefixtures("isolated_cache")


def weights(path):
    model, meta = load_checkpoint(path)
    return {name: np.array(p[k]) for name, p, _, k in model.named_parameters()}, meta


def test_resume_continues_exactly(tmp_path, capsys, tiny_voc, tiny_run):
    """Two epochs in one go (the shared run, through the command line) and one epoch, a crash,
    then `minidet train --resume last.npz`: the same weights, velocities and losses, bit for bit.
    Augmentation and dropout are on, so the loader's epoch and the dropout generator must resume."""
    straight, _ = tiny_run
    out = tmp_path / "run"
    config = tiny_config(tiny_voc, out)
    assert json.loads((straight / "metrics.json").read_text())["history"][0]["epoch"] == 1
    with pytest.raises(Stop):
        train(config, log=stop_after_epoch(1), progress=False)
    _, meta1 = load_checkpoint(out / "last.npz")
    assert meta1["epoch"] == 1 and len(meta1["history"]) == 1

    try:
        main(["train", "--resume", str(out / "last.npz"), "--quiet", "--workers", "1"])
    except SystemExit as e:  # pragma: no cover - a failure shows its message
        pytest.fail(f"resume failed: {capsys.readouterr().err}")
    stdout = capsys.readouterr().out
    assert str(out) in stdout  # the resumed run writes into the run directory of its checkpoint

    w_straight, m_straight = weights(straight / "last.npz")
    w_resumed, m_resumed = weights(out / "last.npz")
    assert w_straight.keys() == w_resumed.keys()
    for name in w_straight:
        assert np.array_equal(w_straight[name], w_resumed[name]), name
    v_straight, v_resumed = m_straight["optimizer"], m_resumed["optimizer"]
    assert v_straight.keys() == v_resumed.keys()
    for k in v_straight:
        assert np.array_equal(v_straight[k], v_resumed[k]), k
    assert m_straight["dropout_rng"] == m_resumed["dropout_rng"]
    keys = ("epoch", "step", "lr", "loss", "coord", "obj", "noobj", "cls", "val_mAP")
    assert [[h[k] for k in keys] for h in m_straight["history"]] == \
           [[h[k] for k in keys] for h in m_resumed["history"]]
    assert m_straight["history"][0]["loss"] != m_straight["history"][1]["loss"]


@pytest.mark.parametrize("where", ["loss", "weights"])
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, tiny_voc, where):
    """A NaN in epoch 2 (a loss at its first step, or weights after its last step) raises
    TrainingDiverged; last.npz of epoch 1 is left byte for byte, and still loads."""
    out = tmp_path / "run"
    config = tiny_config(tiny_voc, out)
    steps_per_epoch = 30 // config.batch_size
    saved = {}

    def log(line):
        if line.startswith("epoch 1/"):
            saved["last"] = (out / "last.npz").read_bytes()

    class NaNLoss(YoloLoss):
        calls = 0

        def forward(self, pred, target, **kw):
            value = super().forward(pred, target, **kw)
            NaNLoss.calls += 1
            return float("nan") if NaNLoss.calls == steps_per_epoch + 1 else value

    class NaNSGD(SGD):
        steps = 0

        def step(self):
            super().step()
            NaNSGD.steps += 1
            if NaNSGD.steps == 2 * steps_per_epoch:
                for _, p, _, k in self.model.named_parameters():
                    p[k][...] = np.inf
                    break

    if where == "loss":
        monkeypatch.setattr(families, "YoloLoss", NaNLoss)
    else:
        monkeypatch.setattr(train_module, "SGD", NaNSGD)
    with pytest.raises(TrainingDiverged) as info:
        train(config, log=log, progress=False)
    message = str(info.value)
    assert "epoch 2" in message and str(out / "last.npz") in message
    assert ("nan" in message) if where == "loss" else ("non-finite" in message)
    assert "\n" not in message
    assert (out / "last.npz").read_bytes() == saved["last"]
    model, meta = load_checkpoint(out / "last.npz")
    assert meta["epoch"] == 1
    assert all(np.isfinite(p[k]).all() for _, p, _, k in model.named_parameters())


def test_absurd_learning_rate_stops_in_one_line(tmp_path, tiny_voc, tiny_train_args):
    """--lr 1e6 overflows at once: exit 2, one line saying the loss became nan/inf, no warnings."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "c")}
    p = subprocess.run([sys.executable, "-m", "minidet", "train", "--data", str(tiny_voc), *tiny_train_args,
                        "--lr", "1e6", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("minidet: error: the loss became ")
    assert "nan" in lines[0] or "inf" in lines[0]
    assert not (tmp_path / "run" / "last.npz").exists()


@pytest.mark.parametrize("head, steps", [("fc", 120), ("conv", 300)])
def test_the_recipe_overfits_a_few_images(tiny_voc, head, steps):
    """SGD (momentum 0.9) on YoloLoss drives the loss of 4 images to near zero and finds their
    objects again (mAP@0.5 = 1), with either head. lr 1e-3 without warm-up: 1e-2 diverges here.
    Observed: fc, loss 23.4 → 0.14 after 100 steps, 5e-4 after 150; conv (64×30 head weights
    against the fully connected head's 0.3 M, so it memorises more slowly), 2.9 after 120
    steps, 0.009 after 300."""
    dataset = VOCDataset(tiny_voc, "train", cache_images=True)
    with BatchLoader(dataset, 4, 56, target_fn=partial(encode_targets, S=7, C=20), workers=1) as loader:
        batch = next(iter(loader))
    model = reduced_fast_yolo(56, 0.0625, C=len(dataset.classes), seed=0, head=head)
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.p = 0.0
    model.train()
    loss = YoloLoss(C=20)
    opt = SGD(model, lr=1e-3, momentum=0.9, weight_decay=0.0)
    values = []
    for _ in range(steps):
        values.append(loss.forward(model.forward(batch.images), batch.targets))
        model.backward(loss.backward())
        opt.step()
    final = loss.forward(model.forward(batch.images), batch.targets)
    assert np.isfinite(values).all()
    assert final < 0.05 * values[0], (values[0], final)
    detections = predict(model, batch.images, score_threshold=0.005)
    result = evaluate(detections, list(zip(batch.boxes, batch.labels, batch.difficult)), num_classes=20)
    assert result["mAP"] >= 0.9, result


def test_head_defaults_and_refusals():
    """The reduced model defaults to the convolutional head, the paper's models to their own."""
    assert train_module.head_for(TrainConfig()) == "conv"
    assert train_module.head_for(TrainConfig(head="fc")) == "fc"
    assert train_module.head_for(TrainConfig(model="fast")) == "fc"
    with pytest.raises(train_module.MinidetError, match="--head conv applies to --model reduced"):
        train_module.head_for(TrainConfig(model="yolo", head="conv"))
    with pytest.raises(train_module.MinidetError, match="--head must be fc or conv"):
        train_module.head_for(TrainConfig(head="dense"))
    model = train_module.model_for(TrainConfig(input_size=56, width=0.0625), 20)
    assert model.arch["kwargs"]["head"] == "conv"


def test_conv_head_run_resumes_exactly_and_refuses_another_head(tmp_path, tiny_voc):
    """The default head through the trainer: 2 epochs straight = 1 epoch + resume; resuming
    it with --head fc is refused, naming the setting."""
    straight = train(tiny_config(tiny_voc, tmp_path / "straight", head=None), log=lambda line: None,
                     progress=False)
    config = tiny_config(tiny_voc, tmp_path / "split", head=None)
    with pytest.raises(Stop):
        train(config, log=stop_after_epoch(1), progress=False)
    _, meta = load_checkpoint(tmp_path / "split" / "last.npz")
    assert meta["config"]["head"] == "conv"  # the resolved head is what the checkpoint records
    with pytest.raises(train_module.CheckpointError, match="head='conv'.*head='fc'"):
        train(tiny_config(tiny_voc, tmp_path / "split", head="fc"), resume=tmp_path / "split" / "last.npz",
              log=lambda line: None, progress=False)
    train(config, resume=tmp_path / "split" / "last.npz", log=lambda line: None, progress=False)
    w_straight, _ = weights(tmp_path / "straight" / "last.npz")
    w_resumed, _ = weights(tmp_path / "split" / "last.npz")
    assert w_straight.keys() == w_resumed.keys() and len(w_straight) > 0
    for name in w_straight:
        assert np.array_equal(w_straight[name], w_resumed[name]), name
    assert straight["run_dir"] == str(tmp_path / "straight")


def test_warmup_schedule_is_counted_in_epochs():
    """lr 1e-2, 2 warm-up epochs of 5 steps, 10 epochs: linear from 1e-4 over steps 0..10,
    then a cosine down to 1e-4 at step 50 (half-way, step 30, at the mid-point)."""
    schedule = train_module.schedule_for(TrainConfig(lr=1e-2, warmup_epochs=2, epochs=10), steps_per_epoch=5)
    expected = {0: 1e-4, 5: 1e-4 + 0.5 * (1e-2 - 1e-4), 10: 1e-2, 30: 1e-4 + 0.5 * (1e-2 - 1e-4), 50: 1e-4}
    assert [schedule(t) for t in expected] == pytest.approx(list(expected.values()), rel=1e-12)
    half = train_module.schedule_for(TrainConfig(lr=1e-2, warmup_epochs=0.5, epochs=10), steps_per_epoch=8)
    assert half(4) == pytest.approx(1e-2, rel=1e-12) and half(2) == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4))
