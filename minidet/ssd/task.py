"""What the trainer needs to train an SSD, in one place: its targets, its loss, its settings.

The trainer (`minidet.train`) runs the same loop, loader, augmentation, SGD and schedule for
every model; for `--model ssd` it takes from here
- `SSDTargets(priors)`: the loader's `target_fn`, one image's (A, 5) float32 target
  `[loc_t (4 offsets), conf_t]` from `match` (the loader stacks them to (N, A, 5));
- `SSDTrainingLoss()`: `forward((loc, conf), targets) -> float` and `backward() -> (dloc, dconf)`,
  the multibox loss on that layout (conf_t read back as int64 on the array's device);
- `check_settings(config)`: the YOLO-only settings refused for an SSD run.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import MinidetError
from .loss import MultiboxLoss
from .match import match


# The peak learning rate of `minidet train --model ssd`, for ssd_lite with BatchNorm after
# every trunk and extra convolution (`ssd_arch`). Without BatchNorm the multibox loss, divided
# by the number of positive priors, gave the deeper convolutions 25–50× less gradient relative
# to their weights than YOLO's loss does; raising the rate to make up for it diverged (NaN at
# step 68 at 1e-2), and at 3e-3 the trunk barely moved: validation mAP@0.5 0.001 after 4
# epochs. With BatchNorm, 4 epochs (1 of warm-up) on the built-in dataset reached validation
# mAP@0.5 0.268 at 1e-2, 0.459 at 3e-2 and 0.407 at 6e-2 (2-core machine, one thread each,
# the other core busy).
SSD_LR = 3e-2


class SSDTargets:
    """target_fn(boxes (K, 4) corners, labels (K,)) -> (A, 5) float32 `[loc_t, conf_t]` for `priors`."""

    def __init__(self, priors, threshold: float = 0.5):
        self.priors, self.threshold = np.asarray(priors, dtype=np.float64), threshold

    def __call__(self, boxes, labels):
        loc_t, conf_t = match(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(labels, np.int64),
                              self.priors, self.threshold)
        return np.concatenate([loc_t, conf_t[:, None]], axis=1).astype(np.float32)


class SSDTrainingLoss:
    """The multibox loss on the trainer's layout: output (loc, conf), targets (N, A, 5)."""

    def __init__(self, neg_pos_ratio: float = 3.0, alpha: float = 1.0):
        self.loss = MultiboxLoss(neg_pos_ratio, alpha)

    @property
    def components(self):
        return self.loss.components

    def forward(self, output, targets) -> float:
        loc, conf = output
        xp = get_array_module(conf)
        targets = xp.asarray(targets)
        if targets.ndim != 3 or targets.shape[2] != 5:
            raise ValueError(f"SSDTrainingLoss: targets must have shape (N, A, 5), got {tuple(targets.shape)}")
        conf_t = xp.rint(targets[..., 4]).astype(xp.int64)
        return self.loss.forward(loc, conf, targets[..., :4], conf_t)

    def backward(self):
        return self.loss.backward()


def check_settings(config) -> None:
    """Refuse the settings that only the YOLO models have, naming the option."""
    if config.head is not None:
        raise MinidetError(f"--head {config.head} applies to --model reduced; --model ssd has its own "
                           f"convolutional predictors on five maps")
    if config.batch_size < 2:
        raise MinidetError(f"--batch-size must be at least 2 for --model ssd, got {config.batch_size}: its "
                           f"BatchNorm normalises the 1×1 map over the batch, one value per channel an image")
    if config.pretrain_epochs:
        raise MinidetError("--pretrain-epochs applies to the YOLO models (it pretrains their trunk on "
                           "cell classification); --model ssd trains from scratch")


def ssd_arch(config, num_classes: int) -> dict:
    """The architecture of `minidet train --model ssd` (`models.ssd_lite`'s arguments): with
    BatchNorm, without which the trunk hardly trained (see SSD_LR)."""
    return {"name": "ssd_lite", "kwargs": dict(input_size=config.input_size, width=config.width,
                                               C=num_classes, seed=config.seed, batch_norm=True)}
