"""SGD with momentum and weight decay, and the learning-rate schedules of the paper.

Update, per parameter w with gradient g (PyTorch's form, so runs compare with it):

    v ← μ·v + g + λ·w        (λ = weight_decay, for weights only: biases are not decayed)
    w ← w − lr·v

Defaults follow the YOLO paper: μ = 0.9, λ = 5e-4. A parameter is a "bias" when its
array is 1-D. The velocities are kept by parameter name so a checkpoint can store them
and `--resume` continues exactly.

On the GPU (or with `multi_tensor=True`) the step is ONE kernel launch for all parameters
of a dtype, not one per parameter: `FlatParameters` moves the parameters and velocities
into two flat buffers (weights first, then biases, so one index bound says which elements
are decayed) and puts views of them back into the model's `params` dicts and into
`velocity`; a step copies the gradients into a third flat buffer (`xp.concatenate`: on
CuPy one kernel when there are more than 8 arrays averaging under 2 MiB, else one copy per
array, CuPy's own rule) and launches kernels/sgd.py once. Whoever replaces a parameter array (`model.to`, a load) is
seen at the next step, which rebuilds the buffers from the arrays it finds.
"""
from __future__ import annotations

import math

import numpy as np

from kernels import sgd as sgd_op

from .backend import get_array_module


def sgd_update(w, g, v, lr: float, momentum: float, weight_decay: float):
    """In place: v ← μv + g + λw; w ← w − lr·v. w, g, v contiguous, same shape and dtype
    (the operation, on either device, is kernels/sgd.py)."""
    sgd_op.update(w, g, v, lr, momentum, weight_decay)


class SGD:
    """SGD(model, lr=1e-3, momentum=0.9, weight_decay=5e-4).

    `model` is anything with `named_parameters()` (a layer, a Sequential, a model).
    `step()` updates every parameter from its gradient; `lr` may be changed between steps
    (the trainer sets it from a schedule).
    multi_tensor: one launch for all parameters (flat buffers, see the module docstring);
    None (default) chooses it for CuPy parameters. True with NumPy parameters runs the CUDA
    kernel, which only Numba's simulator accepts (the tests use it so).
    """

    def __init__(self, model, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 5e-4,
                 multi_tensor: bool | None = None):
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD: need lr >= 0, 0 <= momentum < 1, weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        self.model = model
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity: dict = {}
        self.multi_tensor = multi_tensor
        self._flat: dict = {}  # dtype -> FlatParameters

    def step(self):
        entries = list(self.model.named_parameters())
        if entries and (self.multi_tensor or (self.multi_tensor is None
                                               and get_array_module(entries[0][1][entries[0][3]]) is not np)):
            self._step_flat(entries)
            return
        for name, params, grads, key in entries:
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

    def _step_flat(self, entries):
        by_dtype: dict = {}
        for entry in entries:
            name, params, grads, key = entry
            if grads.get(key) is None:
                raise RuntimeError(f"SGD.step: parameter {name} has no gradient; call backward() first")
            if grads[key].shape != params[key].shape:
                raise RuntimeError(f"SGD.step: gradient of {name} has shape {grads[key].shape}, "
                                   f"parameter {params[key].shape}")
            by_dtype.setdefault(np.dtype(params[key].dtype), []).append(entry)
        for dtype, group in by_dtype.items():
            flat = self._flat.get(dtype)
            if flat is None or not flat.intact(group, self.velocity):
                flat = self._flat[dtype] = FlatParameters(group, self.velocity)
            flat.step(group, self.lr, self.momentum, self.weight_decay)

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


def _address(a) -> int:
    return a.data.ptr if hasattr(a.data, "ptr") else a.__array_interface__["data"][0]


class FlatParameters:
    """The parameters of one dtype, and their velocities, as views into two flat buffers.

    Layout: the decayed parameters (ndim > 1) first, in model order, then the biases;
    `n_decayed` elements are decayed. Building it copies each parameter (and the velocity
    of that name, zeros if none) into the buffers and REPLACES `params[key]` and
    `velocity[name]` with views of them, so the model and the checkpoint see one state.
    """

    def __init__(self, group, velocity: dict):
        xp = get_array_module(group[0][1][group[0][3]])
        order = sorted(range(len(group)), key=lambda i: group[i][1][group[i][3]].ndim <= 1)  # stable
        self.names = [group[i][0] for i in order]
        arrays = [group[i][1][group[i][3]] for i in order]
        sizes = [int(a.size) for a in arrays]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_decayed = sum(size for a, size in zip(arrays, sizes) if a.ndim > 1)
        dtype = arrays[0].dtype
        total = int(self.offsets[-1])
        self.w, self.v, self.g = (xp.empty(total, dtype=dtype) for _ in range(3))
        for j, i in enumerate(order):
            name, params, _, key = group[i]
            lo, hi, shape = self.offsets[j], self.offsets[j + 1], arrays[j].shape
            self.w[lo:hi] = arrays[j].reshape(-1)
            old = velocity.get(name)
            self.v[lo:hi] = old.reshape(-1) if old is not None and old.shape == shape else 0
            params[key] = self.w[lo:hi].reshape(shape)
            velocity[name] = self.v[lo:hi].reshape(shape)
        self.w_addresses = [_address(self.w[lo:hi]) for lo, hi in zip(self.offsets[:-1], self.offsets[1:])]
        self.v_addresses = [_address(self.v[lo:hi]) for lo, hi in zip(self.offsets[:-1], self.offsets[1:])]

    def intact(self, group, velocity: dict) -> bool:
        """True when the group is the same parameters, each still a view of the buffers."""
        by_name = {name: params[key] for name, params, _, key in group}
        if sorted(by_name) != sorted(self.names):
            return False
        for j, name in enumerate(self.names):
            w, v = by_name[name], velocity.get(name)
            size = int(self.offsets[j + 1] - self.offsets[j])
            if (v is None or int(w.size) != size or int(v.size) != size or not w.flags.c_contiguous
                    or _address(w) != self.w_addresses[j] or _address(v) != self.v_addresses[j]):
                return False
        return True

    def step(self, group, lr, momentum, weight_decay):
        grads = {name: grads[key] for name, _, grads, key in group}
        xp = get_array_module(self.w)
        xp.concatenate([grads[name].reshape(-1) for name in self.names], out=self.g)
        sgd_op.sgd_update_gpu(self.w, self.g, self.v, lr, momentum, weight_decay, n_decayed=self.n_decayed)


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
