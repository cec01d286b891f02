"""What the trainer needs to train a Faster R-CNN (`minidet train --model faster`): its targets,
its loss, its settings.

- `FasterTargets()`: the loader's `target_fn`, one image's objects as a fixed-size (M, 5)
  float32 array of rows [x1, y1, x2, y2, label] (normalized corners; rows after the objects
  have label −1), so that the loader can stack them to (N, M, 5);
- `FasterRCNNLoss(model, seed)`: `forward(rpn_out, targets) -> float`, `backward() -> (drpn,
  dhead)`. Approximate joint training (Ren et al. 2015, 3.2): per image, `rpn_targets`
  samples the RPN's anchors (256, up to half positive) and the RPN loss is computed on them;
  the model's proposals from the same RPN output (`TRAIN_PROPOSALS`), held constant, join
  the ground truth and `sample_rois` draws `rois_per_image` of them (up to a quarter
  foreground; background is IoU < 0.5 with every object, pure background included, since
  here the second stage must also reject what the RPN lets through); the model's second
  stage classifies them and the multi-task loss follows. The value is the sum of the two
  losses; `components`: rpn_cls, rpn_box, cls, box. The sampling draws from `rng`, whose
  state the checkpoints keep (an exact resume);
- `FastRCNNLoss(model, seed)`: Fast R-CNN's (`models.SelectiveSearchFastRCNN`), the second
  stage alone on its selective-search proposals;
- `check_settings(config)` / `two_stage_arch(name)`: the settings refused, the architecture.
Boxes in the loss are input pixels (the model's `input_size`); the losses run in float64 on
the CPU, their gradients go back in the output's dtype and device.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from ..errors import MinidetError
from .anchors import rpn_targets
from .detections import split_outputs
from .loss import MultiTaskLoss
from .rpn_head import split_rpn_output
from .rpn_loss import RpnLoss, rpn_maps, rpn_rows
from .sampling import sample_rois

FASTER_LR = 1e-2
MAX_OBJECTS = 64                     # rows of a FasterTargets array
TRAIN_PROPOSALS = (600, 100)         # proposals an image in training: kept before and after NMS


class FasterTargets:
    """target_fn(boxes (K, 4) normalized corners, labels (K,)) -> (MAX_OBJECTS, 5) float32."""

    def __call__(self, boxes, labels):
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        if len(boxes) > MAX_OBJECTS or len(labels) != len(boxes):
            raise ValueError(f"FasterTargets: boxes must be (K, 4) with K <= {MAX_OBJECTS} and labels (K,), got "
                             f"{boxes.shape} and {labels.shape}")
        out = np.zeros((MAX_OBJECTS, 5), np.float32)
        out[:, 4] = -1
        out[:len(boxes), :4], out[:len(boxes), 4] = boxes, labels
        return out


def objects_of(targets, size: int):
    """(N, M, 5) FasterTargets rows -> one (boxes (K, 4) input pixels float64, labels (K,) int64) per image."""
    t = np.asarray(to_numpy(targets), dtype=np.float64)
    if t.ndim != 3 or t.shape[2] != 5:
        raise ValueError(f"FasterRCNNLoss: targets must have shape (N, M, 5), got {t.shape}")
    return [(t[n, t[n, :, 4] >= 0, :4] * size, np.rint(t[n, t[n, :, 4] >= 0, 4]).astype(np.int64))
            for n in range(len(t))]


class FasterRCNNLoss:
    """The training loss of a `models.FasterRCNN` (see the module docstring)."""

    def __init__(self, model, seed: int = 0, rpn_batch: int = 256, rois_per_image: int = 32,
                 fg_fraction: float = 0.25):
        self.model, self.rng = model, np.random.default_rng(seed)
        self.rpn_batch, self.rois_per_image, self.fg_fraction = rpn_batch, rois_per_image, fg_fraction
        self.rpn_loss, self.head_loss = RpnLoss(), MultiTaskLoss()
        self.components, self._cache = {}, None

    def forward(self, rpn_out, targets) -> float:
        model, S = self.model, self.model.input_size
        objects = objects_of(targets, S)
        if len(objects) != rpn_out.shape[0]:
            raise ValueError(f"FasterRCNNLoss: {len(objects)} targets for {rpn_out.shape[0]} images")
        logits, deltas = split_rpn_output(to_numpy(rpn_out), model.num_anchors)
        rows, d = rpn_rows(logits, deltas)
        anchor_t = [rpn_targets(model.anchors, boxes, S, S, self.rng, num=self.rpn_batch) for boxes, _ in objects]
        labels, deltas_t = np.stack([t.labels for t in anchor_t]), np.stack([t.targets for t in anchor_t])
        rpn_value = self.rpn_loss.forward(rows.astype(np.float64), d.astype(np.float64), labels, deltas_t)
        head_value = self._second_stage(model.propose(rpn_out, *TRAIN_PROPOSALS), objects)
        self._cache = (rpn_out.shape, rpn_out.dtype, get_array_module(rpn_out))
        self.components = {"rpn_cls": self.rpn_loss.parts["objectness"], "rpn_box": self.rpn_loss.parts["box"],
                           **self.head_loss.parts}
        return float(rpn_value + head_value)

    def _second_stage(self, proposals, objects) -> float:
        """The multi-task loss of the RoIs sampled among `proposals` (one (P_n, 4) array per
        image) and the ground truth `objects`; 0 when none was sampled."""
        samples = [sample_rois(p, boxes, labels, self.rois_per_image, self.rng, self.fg_fraction, bg_iou=(0.0, 0.5))
                   for p, (boxes, labels) in zip(proposals, objects)]
        rois = np.concatenate([np.concatenate([np.full((len(s.boxes), 1), n, np.float64), s.boxes], axis=1)
                               for n, s in enumerate(samples)])
        self.head_loss.parts, self._head = {"cls": 0.0, "box": 0.0}, None
        if not len(rois):
            return 0.0
        out = self.model.classify(rois)
        self._head = (out.dtype, get_array_module(out))
        cls_logits, box = split_outputs(np.asarray(to_numpy(out), dtype=np.float64), self.model.C)
        return self.head_loss.forward(cls_logits, box, np.concatenate([s.labels for s in samples]),
                                      np.concatenate([s.targets for s in samples]))

    def _dhead(self):
        """The head's gradient (R, 5·(C + 1)) in its output's dtype and device, or None."""
        if self._head is None:
            return None
        dtype, xp = self._head
        dcls, dbox = self.head_loss.backward()
        return xp.asarray(np.concatenate([dcls, dbox], axis=1).astype(dtype))

    def backward(self):
        """(drpn (N, 5A, h, w), dhead (R, 5·(C + 1)) or None when no RoI was sampled)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        shape, dtype, xp = self._cache
        drows, dd = self.rpn_loss.backward()
        dlogits, ddeltas = rpn_maps(drows, dd, self.model.num_anchors, *shape[2:])
        return xp.asarray(np.concatenate([dlogits, ddeltas], axis=1).astype(dtype)), self._dhead()


class FastRCNNLoss(FasterRCNNLoss):
    """The training loss of a `models.SelectiveSearchFastRCNN`: the second stage's alone, on
    RoIs sampled among its selective-search proposals. `forward(proposals, targets)`,
    `backward() -> dhead` (or None); `components`: cls, box."""

    def forward(self, proposals, targets) -> float:
        objects = objects_of(targets, self.model.input_size)
        if len(objects) != len(proposals):
            raise ValueError(f"FastRCNNLoss: {len(objects)} targets for {len(proposals)} images")
        value = self._second_stage(proposals, objects)
        self._cache, self.components = True, dict(self.head_loss.parts)
        return float(value)

    def backward(self):
        if self._cache is None:
            raise RuntimeError("FastRCNNLoss: backward() called before forward()")
        return self._dhead()


def check_settings(config) -> None:
    """Refuse the settings that only the YOLO models have, naming the option and the model."""
    if config.head is not None:
        raise MinidetError(f"--head {config.head} applies to --model reduced; --model {config.model} has its own "
                           f"two-stage head (RoI pooling and a classifier)")
    if config.pretrain_epochs:
        raise MinidetError(f"--pretrain-epochs applies to the YOLO models (it pretrains their trunk on "
                           f"cell classification); --model {config.model} trains from scratch")


def two_stage_arch(name: str):
    """The architecture function of a two-stage family: `models.<name>`'s arguments."""
    def arch(config, num_classes: int) -> dict:
        return {"name": name, "kwargs": dict(input_size=config.input_size, width=config.width, C=num_classes,
                                             seed=config.seed)}
    return arch
