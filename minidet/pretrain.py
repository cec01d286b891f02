"""Pretraining the convolutional layers on classification, before detection.

The paper pretrains YOLO's convolutional layers on ImageNet classification, then adds the
fully connected head and trains detection. Trained from scratch, the detection loss alone
teaches the convolutions slowly: its gradient reaches them only through the fully
connected layers, where every cell's class has its own weights, and on the built-in
dataset the class loss stayed at its prior for over a thousand steps.

Here the classification task is taken from the detection data itself: a 1×1 convolution
on the last S×S feature map predicts, in every cell that holds an object's centre, that
object's class (softmax cross-entropy). Its weights are shared by all cells, so each
image teaches it as many examples as it has objects. The head is thrown away afterwards;
the convolutions keep what they learned.

Shapes: logits (N, C, S, S) (NCHW, from the 1×1 convolution); targets (N, S, S, 5 + C) as
`minidet.boxes.encode_targets` writes them (obj flag at index 4, one-hot class after).
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .cross_entropy import softmax_cross_entropy
from .errors import MinidetError
from .layers import Conv2d, Sequential
from .loop import Steps
from .optim import SGD, WarmupStepLR


class CellClassLoss:
    """Softmax cross-entropy (`cross_entropy.py`) of the class of each object cell, summed, divided by N.

    forward(logits (N, C, S, S), targets (N, S, S, 5 + C)) -> float; backward() -> dlogits.
    `accuracy` after forward: the fraction of object cells whose arg-max class is right.
    """

    def forward(self, logits, targets) -> float:
        z = logits.transpose(0, 2, 3, 1)                      # (N, S, S, C)
        obj = targets[..., 4] > 0.5
        labels = targets[..., 5:].argmax(-1)                  # a cell without an object: weight 0
        total, grad, p = softmax_cross_entropy(z, labels, weight=obj)
        n = logits.shape[0]
        hits = (p.argmax(-1) == labels) & obj
        self.accuracy = float(hits.sum()) / max(1, int(obj.sum()))
        self._cache = (grad / n).transpose(0, 3, 1, 2)
        return total / n

    def backward(self):
        return get_array_module(self._cache).ascontiguousarray(self._cache)


def trunk_of(model) -> Sequential:
    """The convolutional layers of a YoloModel (its first `model.trunk_length` layers),
    sharing weights with it."""
    return Sequential(*model.layers[:model.trunk_length])


def pretrain(model, loader, epochs: float, lr: float, device: str = "cpu", log=print, seed: int = 0,
             momentum: float = 0.9, weight_decay: float = 5e-4) -> dict:
    """Train `model`'s convolutional layers with a 1×1 cell-classification head for `epochs`
    passes of `loader` (a BatchLoader with `target_fn` set). Updates the model in place.

    The training's loop (`loop.Steps`) and SGD with `momentum` and `weight_decay` (the run's
    settings); the learning rate warms up linearly from lr/100 over the first half epoch and
    stays at lr (`WarmupStepLR` without steps).
    Returns {"loss", "accuracy"} of the last epoch.
    """
    if len(loader) == 0:
        raise MinidetError("pretraining: the training loader yields no batch (fewer images than the batch size?)")
    trunk = trunk_of(model)
    channels = next(layer for layer in reversed(trunk.layers) if isinstance(layer, Conv2d)).out_channels
    head = Conv2d(channels, model.C, 1, rng=np.random.default_rng(seed))
    head.to(device)
    net = Sequential(*trunk.layers, head)
    net.train()
    schedule = WarmupStepLR(lr, lr / 100, warmup_steps=max(1, len(loader) // 2))
    opt = SGD(net, lr=schedule(0), momentum=momentum, weight_decay=weight_decay)
    loss_fn = CellClassLoss()
    steps = Steps(net, loss_fn, opt, schedule, device)
    total_steps = max(1, int(round(epochs * len(loader))))
    total, acc, n = 0.0, 0.0, 0
    while steps.step < total_steps:
        before = steps.step
        for batch in loader:
            value = steps.run(batch, lambda step, lr: f"step {step} of the pretraining; try a lower --lr")
            total, acc, n = total + value, acc + loss_fn.accuracy, n + 1
            if steps.step % len(loader) == 0 or steps.step == total_steps:
                log(f"pretraining the convolutions: step {steps.step}/{total_steps}, class loss {total / n:.3f}, "
                    f"cell accuracy {acc / n:.2f}")
                result = {"loss": total / n, "accuracy": acc / n}
                total, acc, n = 0.0, 0.0, 0
            if steps.step >= total_steps:
                break
        if steps.step == before:
            raise MinidetError("pretraining: a pass over the training loader yielded no batch")
    return result
