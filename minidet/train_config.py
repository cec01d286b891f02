"""The settings of a training run and what follows from them alone: the model, its loss and
targets (through its family, `minidet.families`), the number of epochs and the schedule.

`TrainConfig` is also the one home of the command line's defaults (`minidet train --help`
prints them from here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from .data import builtin_dataset
from .errors import MinidetError
from .families import FAMILIES, YOLO_LR, family_for
from .models import build
from .optim import WarmupCosineLR


@dataclass
class TrainConfig:
    """Every setting of a run. Those in RESULT_SETTINGS must match when resuming."""

    data: str | list | None = None   # dataset root(s), VOC, COCO or YOLO layout; None: the built-in one
    train_split: str | None = None   # None: train, else trainval (data/splits.py)
    val_split: str | None = None     # None: val, else 10 % of the training split held out
    test_split: str = "test"         # tested on by every root that has it
    model: str = "reduced"           # a family of minidet.families.FAMILIES: reduced | fast | yolo | ssd | faster | fast-rcnn | rcnn
    input_size: int = 112            # reduced only (fast and yolo take 448)
    width: float = 0.25              # reduced only
    # reduced only: "conv" (a 1×1 convolution shared by all cells, YOLO v2's head) or "fc"
    # (Fast YOLO's fully connected head); None: "conv" for reduced, "fc" for fast and yolo.
    # Measured on the built-in dataset, 2-core CPU, same everything else
    # (benchmarks/head_study.py): val mAP@0.5 after 8 epochs 0.34 with "conv", 0.02 with
    # "fc"; the best "fc" recipe we found (--head fc --pretrain-epochs 3 --epochs 25
    # --warmup-epochs 5) reaches 0.19 on the test split in 9 minutes.
    head: str | None = None
    # None: enough epochs for DEFAULT_STEPS optimizer steps (a small dataset gets as many
    # updates as the built-in one); the run records the number it used.
    epochs: int | None = None
    batch_size: int = 32
    # Peak learning rate (after warm-up); None: the family's (YOLO_LR, SSD_LR: minidet/families.py).
    lr: float | None = None
    warmup_epochs: float = 2.0       # linear warm-up from lr/100
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True
    # Departures from the paper, measured on the built-in dataset (2-core CPU): with the
    # fully connected head at the paper's lambda_coord = 5 the class loss never left its
    # prior (test mAP 0.040); at 1 it was 0.100, and with 3 epochs of classification
    # pretraining of the convolutions (the paper pretrains them on ImageNet) 0.193.
    pretrain_epochs: float = 0.0     # cell-classification pretraining of the convolutions (pretrain.py)
    lambda_coord: float = 1.0        # weight of the coordinate terms (the paper: 5)
    device: str = "auto"             # auto | cpu | cuda
    workers: int = 2
    out: str | None = None           # run directory; default runs/<time>

    def __post_init__(self):
        if self.lr is None:
            family = FAMILIES.get(self.model) if isinstance(self.model, str) else None
            self.lr = family.lr if family is not None else YOLO_LR  # an unknown model is refused later


# What must be the same for a resumed run to continue the same training.
RESULT_SETTINGS = ("data", "train_split", "val_split", "model", "input_size", "width", "head", "epochs",
                   "batch_size", "lr", "warmup_epochs", "momentum", "weight_decay", "seed", "augment",
                   "pretrain_epochs", "lambda_coord")


def head_for(config: TrainConfig) -> str | None:
    """The head the run uses: `config.head`, or its default for the model (see TrainConfig).
    None for a family without that setting (SSD: its predictors are part of its architecture;
    its YOLO-only settings are refused)."""
    return family_for(config.model).resolve(config).get("head")


def model_for(config: TrainConfig, num_classes: int):
    """The untrained model of `config` (its family's architecture, head resolved) for `num_classes`."""
    family = family_for(config.model)
    arch = family.arch(replace(config, **family.resolve(config)), num_classes)
    try:
        return build(arch)
    except ValueError as e:
        raise MinidetError(str(e)) from None


def dataset_roots(config: TrainConfig) -> list:
    """The run's dataset roots (`--data`, repeatable), or the built-in dataset."""
    return [Path(d) for d in ([config.data] if isinstance(config.data, str) else config.data)] \
        if config.data else [builtin_dataset()]


def loss_and_targets(config: TrainConfig, model):
    """The loss of `model` and the loader's `target_fn(boxes, labels)` for one image (its family's)."""
    return family_for(config.model).loss_and_targets(config, model)


def dataset_root(config: TrainConfig) -> Path:
    return dataset_roots(config)[0]


DEFAULT_STEPS = 20 * (2000 // 32)  # the default run: 20 epochs of the built-in 2000 images at batch 32
SMALL_TRAIN_SPLIT = 1000           # images; below this, a run from scratch is warned about


def epochs_for(config: TrainConfig, steps_per_epoch: int) -> int:
    """config.epochs, or (None) the epochs that make at least DEFAULT_STEPS optimizer steps."""
    return config.epochs if config.epochs is not None else max(1, math.ceil(DEFAULT_STEPS / steps_per_epoch))


def resolved_data(data):
    """The dataset path(s) a checkpoint records: absolute, so a resume from elsewhere finds them."""
    if not data:
        return data
    if isinstance(data, str):
        return str(Path(data).resolve())
    return [str(Path(d).resolve()) for d in data]


def schedule_for(config: TrainConfig, steps_per_epoch: int) -> WarmupCosineLR:
    """The learning rate per step: linear warm-up from lr/100 over `warmup_epochs`, then a
    cosine decay to lr/100 at the last step.

    The paper warms up from lr/10; trained from scratch without batch norm, the network
    with its fully connected head diverged within 20 steps that way at lr 1e-2 (the output
    layer and the 12544-input fully connected layer take huge relative steps early on).
    From lr/100 it stayed stable in every run we made: over 5 epochs with the fully
    connected head, over 2 with the convolutional one (the default)."""
    total = steps_per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    return WarmupCosineLR(config.lr, config.lr / 100, warmup, max(total, warmup + 1), final_lr=config.lr / 100)


