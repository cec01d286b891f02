"""SGD with momentum and weight decay, and the learning-rate schedules of the paper.

Update, per parameter w with gradient g (PyTorch's form, so runs compare with it):

    v ← μ·v + g + λ·w        (λ = weight_decay, for weights only: biases are not decayed)
    w ← w − lr·v

Defaults follow the YOLO paper: μ = 0.9, λ = 5e-4. A parameter is a "bias" when its
array is 1-D. The velocities are kept by parameter name so a checkpoint can store them
and `--resume` continues exactly.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .backend import get_array_module


@njit(parallel=True, cache=True, nogil=True)
def _sgd_cpu(w, g, v, lr, momentum, decay):
    mu = w.dtype.type(momentum)
    lam = w.dtype.type(decay)
    step = w.dtype.type(lr)
    for i in prange(w.size):
        vi = mu * v[i] + g[i] + lam * w[i]
        v[i] = vi
        w[i] -= step * vi


def sgd_update(w, g, v, lr: float, momentum: float, weight_decay: float):
    """In place: v ← μv + g + λw; w ← w − lr·v. w, g, v contiguous, same shape and dtype."""
    if get_array_module(w) is np:
        _sgd_cpu(w.reshape(-1), np.ascontiguousarray(g, dtype=w.dtype).reshape(-1), v.reshape(-1),
                 lr, momentum, weight_decay)
    else:
        from kernels import sgd as gpu

        gpu.sgd_update_gpu(w, g, v, lr, momentum, weight_decay)


class SGD:
    """SGD(model, lr=1e-3, momentum=0.9, weight_decay=5e-4).

    `model` is anything with `named_parameters()` (a layer, a Sequential, a model).
    `step()` updates every parameter from its gradient; `lr` may be changed between steps
    (the trainer sets it from a schedule).
    """

    def __init__(self, model, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD: need lr >= 0, 0 <= momentum < 1, weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        self.model = model
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity: dict = {}

    def step(self):
        for name, params, grads, key in self.model.named_parameters():
            w, g = params[key], grads.get(key)
            if g is None:
                raise RuntimeError(f"SGD.step: parameter {name} has no gradient; call backward() first")
            if g.shape != w.shape:
                raise RuntimeError(f"SGD.step: gradient of {name} has shape {g.shape}, parameter {w.shape}")
            v = self.velocity.get(name)
            xp = get_array_module(w)
            if v is None or v.shape != w.shape or get_array_module(v) is not xp or v.dtype != w.dtype:
                v = self.velocity[name] = xp.zeros_like(w)
            decay = self.weight_decay if w.ndim > 1 else 0.0
            sgd_update(w, g, v, self.lr, self.momentum, decay)

    def state_dict(self) -> dict:
        """Velocities by parameter name (as NumPy arrays) and the hyper-parameters."""
        from .backend import to_numpy

        state = {f"velocity/{k}": to_numpy(v) for k, v in self.velocity.items()}
        state.update(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return state

    def load_state_dict(self, state: dict):
        from .backend import device_of, to_device

        names = {name: params[key] for name, params, _, key in self.model.named_parameters()}
        self.velocity = {}
        for k, v in state.items():
            if k.startswith("velocity/"):
                name = k[len("velocity/"):]
                if name not in names or names[name].shape != np.shape(v):
                    raise ValueError(f"SGD.load_state_dict: velocity {name!r} does not fit the model")
                w = names[name]
                self.velocity[name] = to_device(np.asarray(v, dtype=w.dtype), device_of(w))
        self.lr = float(state.get("lr", self.lr))
        self.momentum = float(state.get("momentum", self.momentum))
        self.weight_decay = float(state.get("weight_decay", self.weight_decay))


class WarmupStepLR:
    """Linear warm-up from `warmup_from` to `base_lr` over `warmup_steps`, then steps.

    lr(t) = warmup_from + (base_lr − warmup_from)·t/warmup_steps   for t < warmup_steps
          = base_lr · factors[j]   after milestones[j] (the last milestone passed)
    The paper: up from 1e-3 to 1e-2, then 1e-3, then 1e-4 — WarmupStepLR(1e-2, 1e-3, w,
    milestones=(m1, m2), factors=(0.1, 0.01)).
    """

    def __init__(self, base_lr, warmup_from, warmup_steps, milestones=(), factors=()):
        if len(milestones) != len(factors):
            raise ValueError("WarmupStepLR: milestones and factors must have the same length")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"WarmupStepLR: milestones must increase, got {milestones}")
        self.base_lr, self.warmup_from, self.warmup_steps = base_lr, warmup_from, int(warmup_steps)
        self.milestones, self.factors = tuple(milestones), tuple(factors)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_from + (self.base_lr - self.warmup_from) * step / self.warmup_steps
        factor = 1.0
        for m, f in zip(self.milestones, self.factors):
            if step >= m:
                factor = f
        return self.base_lr * factor


class WarmupCosineLR:
    """Linear warm-up to `base_lr`, then a cosine decay to `final_lr` at `total_steps`."""

    def __init__(self, base_lr, warmup_from, warmup_steps, total_steps, final_lr=0.0):
        if total_steps <= warmup_steps:
            raise ValueError(f"WarmupCosineLR: total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.base_lr, self.warmup_from, self.warmup_steps = base_lr, warmup_from, int(warmup_steps)
        self.total_steps, self.final_lr = int(total_steps), final_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_from + (self.base_lr - self.warmup_from) * step / self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.final_lr + 0.5 * (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * t))
