"""The optimisation loop, one for every training in minidet (detection and pretraining).

`Steps(net, loss_fn, opt, schedule, device)` runs optimizer steps over batches: for each,
the learning rate of the schedule at that step, forward, loss, a stop on a non-finite
loss, backward, SGD update. What a run does around it (epochs, logs, validation,
checkpoints) belongs to its caller (`minidet.train`, `minidet.pretrain`).
"""
from __future__ import annotations

import math

from .backend import to_device
from .errors import TrainingDiverged


class Steps:
    """Optimizer steps of `net` on `loss_fn`.

    net: forward(images (N, 3, H, W)) -> output; backward(gradient) or backward(*gradients)
    when the loss's backward returns a tuple (SSD: (dloc, dconf)).
    loss_fn: forward(output, targets) -> float; backward(); `components` (optional): named terms.
    schedule: step -> learning rate (minidet.optim's WarmupCosineLR, WarmupStepLR).
    `step` counts the steps taken, and is where the schedule is read.
    """

    def __init__(self, net, loss_fn, opt, schedule, device: str = "cpu", step: int = 0):
        self.net, self.loss_fn, self.opt, self.schedule = net, loss_fn, opt, schedule
        self.device, self.step = device, step

    def run(self, batch, context=lambda step, lr: f"step {step} (lr {lr:.3g})") -> float:
        """One step on `batch` (images (N, 3, H, W), targets as the loader's target_fn made
        them); returns the loss before the update. A non-finite loss raises TrainingDiverged,
        the parameters untouched: "the loss became nan at " + context(step, lr)."""
        self.opt.lr = self.schedule(self.step)
        pred = self.net.forward(to_device(batch.images, self.device))
        value = self.loss_fn.forward(pred, to_device(batch.targets, self.device))
        if not math.isfinite(value):
            raise TrainingDiverged(f"the loss became {value} at {context(self.step, self.opt.lr)}")
        grad = self.loss_fn.backward()
        self.net.backward(*grad) if isinstance(grad, tuple) else self.net.backward(grad)
        self.opt.step()
        self.step += 1
        return value
