"""The detector families `minidet train --model NAME` trains: one registration each.

The trainer (`minidet.train`) runs the same loop, loader, SGD, schedule, validation and
checkpoints for every family; what differs is a `Family`:

- `arch(config, num_classes) -> dict`: the architecture `models.build` makes, recorded in
  the checkpoint ({"name": a key of `models.ARCHITECTURES`, "kwargs": {...}});
- `loss_and_targets(config, model) -> (loss, target_fn)`: the training loss
  (`forward(output, targets) -> float`, `backward() -> gradient`, or a tuple of gradients
  that `model.backward` takes as its arguments; `components`: the named terms, logged)
  and the loader's `target_fn(boxes (K, 4) corners in [0, 1], labels (K,))` for one image;
  a loss that samples (Faster R-CNN's) draws from its `rng`, which checkpoints keep;
- `resolve(config) -> dict`: checks the family's own settings (a MinidetError naming the
  option) and returns the settings it resolves (the recorded head), merged into the config;
- `lr`: the default peak learning rate.

Detections for evaluation come from the model itself (`inference.predict`: a model with a
`decode` method decodes its own output), so an evaluated checkpoint needs no family.
Adding a family: a `Family(...)` in `FAMILIES` below, and its architecture in
`models.ARCHITECTURES` (what a checkpoint is rebuilt from).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from .boxes import encode_targets
from .errors import MinidetError
from .loss import YoloLoss
from .rcnn.task import FASTER_LR, FastRCNNLoss, FasterRCNNLoss, FasterTargets, two_stage_arch
from .rcnn.task import check_settings as check_two_stage_settings
from .ssd.task import SSD_LR, SSDTargets, SSDTrainingLoss, check_settings, ssd_arch

YOLO_LR = 1e-2  # the peak learning rate of the YOLO models (train.schedule_for says why it warms up from lr/100)


@dataclass(frozen=True)
class Family:
    """What `minidet train --model <name>` needs beyond the shared loop (see the module docstring)."""

    name: str
    arch: Callable
    loss_and_targets: Callable
    resolve: Callable = lambda config: {}
    lr: float = YOLO_LR


def _yolo_head(config) -> dict:
    """The head the run uses: `config.head`, or its default for the model (see TrainConfig)."""
    head = config.head if config.head is not None else ("conv" if config.model == "reduced" else "fc")
    if head not in ("fc", "conv"):
        raise MinidetError(f"--head must be fc or conv, got {head!r}")
    if head == "conv" and config.model != "reduced":
        raise MinidetError(f"--head conv applies to --model reduced; the paper's {config.model!r} model "
                           f"keeps its fully connected head")
    return {"head": head}


def _yolo_loss_and_targets(config, model):
    return (YoloLoss(S=model.S, B=model.B, C=model.C, lambda_coord=config.lambda_coord),
            partial(encode_targets, S=model.S, C=model.C))


def _yolo(name: str, arch: Callable) -> Family:
    return Family(name, arch, _yolo_loss_and_targets, _yolo_head)


def _ssd_resolve(config) -> dict:
    check_settings(config)
    return {"head": None}  # its predictors are part of its architecture


def _ssd_loss_and_targets(config, model):
    return SSDTrainingLoss(), SSDTargets(model.priors)


def _faster_resolve(config) -> dict:
    check_two_stage_settings(config)
    return {"head": None}  # its two-stage head is part of its architecture


def _fast_rcnn_resolve(config) -> dict:
    # Fast R-CNN's and R-CNN's selective-search proposals are computed once per image
    # (models/fast_rcnn_ss.py): an augmented image would be a new one every epoch.
    check_two_stage_settings(config)
    return {"head": None, "augment": False}


def _faster_loss_and_targets(config, model):
    return FasterRCNNLoss(model, seed=config.seed), FasterTargets()


def _fast_rcnn_loss_and_targets(config, model):
    return FastRCNNLoss(model, seed=config.seed), FasterTargets()


def _grid(config, C: int) -> dict:
    return dict(S=7, B=2, C=C, seed=config.seed)


# The registry: `--model` takes these names, in this order (the CLI's choices and messages).
FAMILIES = {f.name: f for f in (
    _yolo("reduced", lambda config, C: {"name": "reduced_fast_yolo", "kwargs": dict(
        input_size=config.input_size, width=config.width, **_grid(config, C), head=config.head)}),
    _yolo("fast", lambda config, C: {"name": "fast_yolo", "kwargs": _grid(config, C)}),
    _yolo("yolo", lambda config, C: {"name": "yolo_v1", "kwargs": _grid(config, C)}),
    Family("ssd", ssd_arch, _ssd_loss_and_targets, _ssd_resolve, lr=SSD_LR),
    Family("faster", two_stage_arch("faster_rcnn"), _faster_loss_and_targets, _faster_resolve, lr=FASTER_LR),
    Family("fast-rcnn", two_stage_arch("fast_rcnn_ss"), _fast_rcnn_loss_and_targets, _fast_rcnn_resolve,
           lr=FASTER_LR),
    Family("rcnn", two_stage_arch("crop_rcnn"), _fast_rcnn_loss_and_targets, _fast_rcnn_resolve, lr=FASTER_LR),
)}


def family_for(name: str) -> Family:
    """The registered family `name`; a MinidetError listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        names = list(FAMILIES)
        raise MinidetError(f"--model must be {', '.join(names[:-1])} or {names[-1]}, got {name!r}") from None
