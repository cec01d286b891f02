"""The files of a training run: its directory, its metrics, and a resumed run's checkpoints.

`Run(out)` creates the run directory (removing hidden temporaries a killed writer left
there) and writes metrics.csv / metrics.json atomically. `check_training_state` tells a
damaged or hand-edited training checkpoint from a good one before a resume uses it, and
`recover_best` gives a run resumed into another directory the best.npz it needs;
`config_from_checkpoint` and `check_resume` read and compare the settings it was trained with.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import CheckpointError, MinidetError
from .files import atomic_write, remove_stale_temporaries, write_bytes_atomic, write_text_atomic
from .models import load_checkpoint
from .train_config import RESULT_SETTINGS, resolved_data


class Run:
    """The files of one run directory."""

    FILES = ("last.npz", "best.npz", "metrics.csv", "metrics.json", "loss.png", "map.png", "detections.png")

    def __init__(self, out):
        self.dir = Path(out)
        if self.dir.exists() and not self.dir.is_dir():
            raise MinidetError(f"--out {self.dir}: exists and is not a directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MinidetError(f"--out {self.dir}: cannot create the run directory ({e.strerror or e})") from None
        # A run killed while writing leaves hidden temporaries of several MB.
        remove_stale_temporaries(self.dir, self.FILES)
        self.last, self.best = self.dir / "last.npz", self.dir / "best.npz"
        self.csv, self.json = self.dir / "metrics.csv", self.dir / "metrics.json"

    def write_metrics(self, history, extra=None):
        keys = list(history[0]) if history else []
        with atomic_write(self.csv) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(history)
        write_text_atomic(self.json, json.dumps({"history": history, **(extra or {})}, indent=1))


# What a training checkpoint holds beside the weights, and what each is called in an error.
TRAINING_STATE = {"optimizer": "the optimizer state", "epoch": "the epoch", "step": "the step",
                  "history": "the metrics history", "best_map": "the best validation mAP",
                  "dropout_rng": "the dropout generators"}


def check_training_state(meta: dict, path) -> None:
    for key, what in TRAINING_STATE.items():
        if key not in meta:
            raise CheckpointError(f"{path}: {what} is missing ({key}); the file is damaged or not a "
                                  f"training checkpoint, cannot resume")


def recover_best(run: Run, resume, history, best_map: float, log) -> float:
    """best.npz for a run resumed into a directory that lacks it (--out elsewhere, a copied
    last.npz): the one beside the checkpoint, or the checkpoint itself when its epoch was
    the best. Otherwise the best of the earlier epochs is lost: best.npz will hold the best
    epoch from here on, and the returned best mAP is reset so that the next epoch writes it."""
    beside = Path(resume).parent / "best.npz"
    if beside.is_file():
        data = beside.read_bytes()
    elif history and history[-1].get("val_mAP") == best_map:
        data = Path(resume).read_bytes()
    else:
        log(f"note: no best.npz beside {resume}; best.npz in {run.dir} will hold the best epoch "
            f"from epoch {len(history) + 1} on")
        return -1.0
    write_bytes_atomic(run.best, data)
    return best_map


def config_from_checkpoint(path) -> dict:
    """The TrainConfig settings stored in a training checkpoint (for --resume defaults)."""
    _, meta = load_checkpoint(path)
    if "config" not in meta:
        raise CheckpointError(f"{path}: not a training checkpoint (no settings recorded); cannot resume")
    return meta["config"]


def check_resume(config, saved: dict, path, keys=RESULT_SETTINGS) -> None:
    """CheckpointError naming the first of `keys` whose setting differs between `config`
    and the `saved` settings of checkpoint `path`."""
    # Checkpoints from before the `head` setting all had the fully connected head.
    saved = {"head": "fc", **saved}
    saved["data"] = resolved_data(saved.get("data"))  # checkpoints that stored it relative
    for key in keys:
        if saved.get(key) != getattr(config, key):
            raise CheckpointError(f"--resume {path}: the run was trained with {key}={saved.get(key)!r}, "
                                  f"this run asks for {key}={getattr(config, key)!r}")
