"""Checks made before any work starts: the settings of a run, and every split it will read.

A run that is going to fail on a bad setting or a bad file should fail before its first
step, in one line naming the argument or the file, not after an hour of training. The
trainer calls these before it creates its run directory; `minidet eval` and `detect`
call the ones that concern them.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import CheckpointError, DatasetError, MinidetError

# setting -> (command-line flag, smallest allowed value, whether the smallest is allowed)
_NUMBERS = {
    "lr": ("--lr", 0.0, False),
    "lambda_coord": ("--lambda-coord", 0.0, True),
    "warmup_epochs": ("--warmup-epochs", 0.0, True),
    "pretrain_epochs": ("--pretrain-epochs", 0.0, True),
    "width": ("--width", 0.0, False),
    "weight_decay": ("weight_decay", 0.0, True),
    "momentum": ("momentum", 0.0, True),
}
_COUNTS = {"epochs": "--epochs", "batch_size": "--batch-size", "input_size": "--input-size",
           "workers": "--workers"}


def check_train_config(config) -> None:
    """MinidetError naming the flag for a setting no run can use: a NaN, an infinity or a
    negative learning rate, weight or epoch count, a count below 1, a negative seed."""
    for name, (flag, low, low_ok) in _NUMBERS.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise MinidetError(f"{flag} must be a finite number, got {value!r}")
        if value < low or (value == low and not low_ok):
            bound = f"at least {low:g}" if low_ok else f"greater than {low:g}"
            raise MinidetError(f"{flag} must be {bound}, got {value!r}")
    if config.momentum >= 1:
        raise MinidetError(f"momentum must be below 1, got {config.momentum!r}")
    for name, flag in _COUNTS.items():
        value = getattr(config, name)
        if name == "epochs" and value is None:  # the default: as many as train.epochs_for gives
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MinidetError(f"{flag} must be a whole number of at least 1, got {value!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise MinidetError(f"--seed must be a whole number of at least 0, got {config.seed!r}")


def check_threshold(value, flag: str = "--threshold") -> float:
    """A score threshold in [0, 1] (NaN refused)."""
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise MinidetError(f"{flag} must be between 0 and 1, got {value!r}")
    return float(value)


def require_evaluable(dataset) -> None:
    """DatasetError when a split has nothing to evaluate: no image, or no object that counts
    (every object difficult). An mAP over nothing is not 0, it is undefined."""
    where, split = _source(dataset)
    if len(dataset) == 0:
        raise DatasetError(f"{where}: the {split} split is empty: nothing to evaluate")
    if not any((~a.difficult).any() for a in dataset.annotations):
        raise DatasetError(f"{where}: the {split} split has no object that is not difficult: "
                           f"nothing to evaluate")


def _source(dataset) -> tuple:
    """(where the split comes from, its name) for a message: the VOC split file, another
    layout's root, or the datasets a held-out part (data.splits.Subset) or a concatenation
    (Concat) is made of."""
    parts = getattr(dataset, "parts", None)
    if parts is not None:
        sources = [_source(p) for p in parts]
        return " + ".join(str(w) for w, _ in sources), sources[0][1]
    inner = getattr(dataset, "dataset", None)
    if inner is not None:
        where, split = _source(inner)
        return f"{where} ({len(dataset)} of its images)", split
    split_file = Path(dataset.root) / "ImageSets" / "Main" / f"{dataset.split}.txt"
    return (split_file if split_file.is_file() else dataset.root), dataset.split


def check_images(dataset, workers: int = 1) -> None:
    """Decode every image of `dataset` once (in `workers` threads), so that a truncated or
    foreign file, or one whose size differs from its annotation, stops the run now with
    the DatasetError naming it. A caching dataset keeps what it decoded."""
    def one(i):
        dataset.image(i)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for _ in pool.map(one, range(len(dataset))):
            pass


def fingerprint(datasets: dict) -> dict:
    """What identifies the data a run trains on: {"classes": [...], "splits": {split: images}}."""
    first = next(iter(datasets.values()))
    return {"classes": list(first.classes), "splits": {name: len(ds) for name, ds in datasets.items()}}


def check_fingerprint(saved: dict | None, saved_classes, current: dict, root, checkpoint) -> None:
    """CheckpointError when the dataset of a resumed run is not the one it was trained on:
    other class names (or the same in another order) or other split sizes."""
    if saved_classes is not None and list(saved_classes) != current["classes"]:
        diff = next((i for i, (a, b) in enumerate(zip(saved_classes, current["classes"])) if a != b),
                    min(len(saved_classes), len(current["classes"])))
        raise CheckpointError(
            f"--resume {checkpoint}: {root} has other classes than the run was trained on "
            f"(class {diff} is {_at(current['classes'], diff)!r} there, {_at(saved_classes, diff)!r} in the "
            f"checkpoint; {len(current['classes'])} against {len(saved_classes)} classes)")
    if saved is None:
        return
    for split, n in saved.get("splits", {}).items():
        now = current["splits"].get(split)
        if now is not None and now != n:
            raise CheckpointError(f"--resume {checkpoint}: the {split} split of {root} has {now} images; "
                                  f"the run was trained with {n}: not the same dataset")


def _at(names, i):
    return names[i] if i < len(names) else "(none)"
