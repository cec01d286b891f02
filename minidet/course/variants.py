"""Chapter 7's quick run with one setting changed: the measured answers of the long exercises.

Three exercises (chapter 5's λnoobj = 1, chapter 7's training without augmentation and with
λcoord = 5) ask for a training run each. `quick_run` trains chapter 7's quick settings
(`QUICK`: the 4 colour classes of `minidet.course.quick`, the first 1200 training images,
width 1/8, 12 epochs of 32 images, a 1-epoch warm-up) with `minidet train`'s step loop
(`minidet.loop.Steps`), one setting changed, and measures what the exercises ask about.

    python -m minidet.course exercises OUT.json [--seeds 0 1 2]

runs every entry of `VARIANTS` for each seed and writes the record; `RECORD` is the one
measured for the course (the solutions print its range over the seeds, and the time of a run).
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# Chapter 7's quick settings (its first cell; tests/test_course_variants.py keeps them equal).
QUICK = {"train_images": 1200, "val_images": 100, "test_images": 200, "width": 0.125, "epochs": 12,
         "batch_size": 32, "warmup_epochs": 1}
# What the exercises change, each against the unchanged "baseline".
VARIANTS = {"baseline": {}, "no augmentation": {"augment": False},
            "lambda_coord 5": {"lambda_coord": 5.0}, "lambda_noobj 1": {"lambda_noobj": 1.0}}
RECORD = Path(__file__).with_name("exercises_measured.json")
TERMS = ("loss", "coord", "obj", "noobj", "cls")


def quick_dataset(workdir) -> Path:
    """The quick mode's dataset (4 colour classes, QUICK's split sizes) written under `workdir`."""
    from ..data import builtin_dataset
    from .quick import relabelled

    sizes = {"train": QUICK["train_images"], "val": QUICK["val_images"], "test": QUICK["test_images"]}
    return relabelled(builtin_dataset(), Path(workdir) / "data", sizes=sizes)


def empty_cell_confidence(pred, target, B: int) -> float:
    """Mean confidence of the B predictors of the cells that hold no object.

    pred (N, S, S, 5B + C), target (N, S, S, 5 + C) as `encode_targets` writes it (obj at 4).
    """
    empty = target[..., 4] == 0
    conf = pred[..., [5 * b + 4 for b in range(B)]]
    return float(conf[empty].mean()) if empty.any() else 0.0


def quick_run(root, seed: int = 0, augment: bool = True, lambda_coord: float | None = None,
              lambda_noobj: float = 0.5, epochs: int | None = None, log=None) -> dict:
    """Train QUICK's settings on `root` (VOC layout) with one change; return what was measured.

    Returns {"mAP": test mAP@0.5, "seconds": training time, "steps", the mean of the last 4 steps'
    loss terms under TERMS, "empty_conf": mean confidence of the empty cells' predictors on
    the test images, "detections": detections per test image scoring > 0.2, "objects": truths
    per test image}.
    """
    from ..boxes import encode_targets
    from ..data import BatchLoader, VOCDataset
    from ..inference import evaluate_loader
    from ..loop import Steps
    from ..loss import YoloLoss
    from ..optim import SGD
    from ..train import TrainConfig, model_for, schedule_for

    base = TrainConfig()
    config = replace(base, data=str(root), width=QUICK["width"], epochs=epochs or QUICK["epochs"],
                     batch_size=QUICK["batch_size"], warmup_epochs=QUICK["warmup_epochs"], seed=seed,
                     device="cpu", augment=augment,
                     lambda_coord=base.lambda_coord if lambda_coord is None else lambda_coord)
    train_set = VOCDataset(root, "train", cache_images=True)
    test_set = VOCDataset(root, "test", classes=train_set.classes, cache_images=True)
    model = model_for(config, len(train_set.classes))
    loss_fn = YoloLoss(S=model.S, B=model.B, C=model.C, lambda_coord=config.lambda_coord, lambda_noobj=lambda_noobj)
    steps_per_epoch = len(train_set) // config.batch_size
    schedule = schedule_for(config, steps_per_epoch)
    opt = SGD(model, lr=schedule(0), momentum=config.momentum, weight_decay=config.weight_decay)
    target_fn = lambda boxes, labels: encode_targets(boxes, labels, model.S, model.C)  # noqa: E731
    history = {k: [] for k in TERMS}
    steps = Steps(model, loss_fn, opt, schedule)
    t0 = time.perf_counter()
    model.train()
    with BatchLoader(train_set, config.batch_size, model.input_size, augment=config.augment, shuffle=True,
                     drop_last=True, seed=config.seed, workers=config.workers, target_fn=target_fn) as loader:
        for _ in range(config.epochs):
            for batch in loader:
                history["loss"].append(steps.run(batch))
                for k, v in loss_fn.components.items():
                    history[k].append(v)
    seconds, step = time.perf_counter() - t0, steps.step
    with BatchLoader(test_set, config.batch_size, model.input_size, workers=1) as loader:
        result, dets, truths = evaluate_loader(model, loader)
    confs = []
    model.eval()
    with BatchLoader(test_set, config.batch_size, model.input_size, workers=1, target_fn=target_fn) as loader:
        for batch in loader:
            confs.append(empty_cell_confidence(model.forward(batch.images), batch.targets, model.B))
    out = {"mAP": float(result["mAP"]), "seconds": seconds, "steps": step,
           **{k: float(np.mean(v[-4:])) for k, v in history.items()},
           "empty_conf": float(np.mean(confs)),
           "detections": float(np.mean([len(d[0]) for d in dets])),
           "objects": float(np.mean([len(t[0]) for t in truths]))}
    if log:
        log(f"  seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out


def measure(out, seeds=(0, 1, 2), variants=VARIANTS, log=print) -> dict:
    """Run every variant for every seed; write and return the record."""
    record = {"command": "python -m minidet.course exercises " + str(out) + " --seeds " + " ".join(map(str, seeds)),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "seeds": list(seeds), "quick": QUICK, "variants": variants, "runs": {},
              # The load average says whether "seconds" is an idle figure (≈ 0) or a shared machine's.
              "load_average": {"start": os.getloadavg()[1]}}
    with tempfile.TemporaryDirectory(prefix="minidet-exercises-") as work:
        root = quick_dataset(work)
        for name, change in variants.items():
            log(f"{name}: {change or 'the quick settings unchanged'}")
            record["runs"][name] = [quick_run(root, seed, log=log, **change) for seed in seeds]
    record["load_average"]["end"] = os.getloadavg()[1]
    tmp = Path(str(out) + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    return record


def load(record=None) -> dict:
    """The record (a dict, a path, or None for RECORD)."""
    if isinstance(record, dict):
        return record
    return json.loads(Path(record or RECORD).read_text())


def paired(record, name: str, key: str) -> list[tuple[float, float]]:
    """(baseline, variant) of `key` per seed: the seeds share the data order and the start weights."""
    record = load(record)
    return [(b[key], v[key]) for b, v in zip(record["runs"]["baseline"], record["runs"][name])]


def paired_table(record, name: str, keys=("mAP",)) -> str:
    """One line per key: baseline -> `name`, seed by seed."""
    record = load(record)
    seeds = record.get("seeds", range(len(record["runs"]["baseline"])))
    return "\n".join(f"{key:<11}" + "   ".join(f"seed {s}: {b:.3g} -> {v:.3g}"
                                                for s, (b, v) in zip(seeds, paired(record, name, key)))
                     for key in keys)


def summary(record=None, names=None) -> str:
    """The record as a table: per variant, the range (min–max over the seeds) of each figure."""
    record = load(record)
    keys = ("mAP", "loss", "cls", "coord", "obj", "noobj", "empty_conf", "detections", "seconds")
    lines = [f"measured by `{record['command']}` on {record['machine']}, {record['date']}; "
             f"min–max over {len(next(iter(record['runs'].values())))} seeds"]
    lines.append(f"{'':<16}" + "".join(f"{k:>15}" for k in keys))
    for name in names or record["runs"]:
        runs = record["runs"][name]
        cells = [f"{min(r[k] for r in runs):.3g}–{max(r[k] for r in runs):.3g}" for k in keys]
        lines.append(f"{name:<16}" + "".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)
