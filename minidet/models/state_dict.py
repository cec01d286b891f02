"""Weights by PyTorch's `nn.Sequential` names, to move them between minidet and PyTorch.

    state_dict(model) -> {"0.weight": array, "0.bias": array, "2.running_mean": ..., ...}
    load_state_dict(model, state)

Key "{index}.{name}": index is the layer's position in the model (`model.layers[index]`),
name is PyTorch's: Conv2d and Linear W → "weight", b → "bias"; BatchNorm2d gamma →
"weight", beta → "bias", and its buffers "running_mean", "running_var",
"num_batches_tracked". Layouts are PyTorch's already (Conv2d (out, in, k, k), Linear
(out, in)), so the arrays go across unchanged: a `torch.nn.Sequential` with the same
layers at the same indices (nn.Flatten where minidet has Flatten, and so on) takes
`{k: torch.from_numpy(v) for k, v in state_dict(model).items()}` and computes the same
outputs, and `load_state_dict(model, {k: v.numpy() for k, v in torch_model.state_dict().items()})`
goes the other way.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from ..errors import CheckpointError

# minidet's parameter names → PyTorch's.
TORCH_NAMES = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}


class StateDictError(CheckpointError):
    """A state dict that does not fit the model: missing, unexpected or misshapen keys."""


def _entries(model):
    """{torch key: (store dict, minidet key)} for every parameter and buffer of `model`."""
    entries = {}
    for name, params, _, key in model.named_parameters():
        prefix = name[: -len(key)]
        entries[prefix + TORCH_NAMES.get(key, key)] = (params, key)
    for name, buffers, key in model.named_buffers():
        entries[name] = (buffers, key)
    # PyTorch's order: by layer, each layer's parameters then its buffers (a stable sort).
    return dict(sorted(entries.items(), key=lambda item: int(item[0].split(".", 1)[0])))


def state_dict(model) -> dict:
    """{PyTorch nn.Sequential key: NumPy copy} of every parameter and buffer of `model`."""
    return {k: np.array(to_numpy(store[key]), copy=True) for k, (store, key) in _entries(model).items()}


def load_state_dict(model, state: dict):
    """Copy `state` ({key: array-like}, e.g. from PyTorch) into `model`, in its dtypes and on
    its device. Every key must be present, none extra, each of the model's shape; otherwise
    StateDictError naming the keys, and the model is left untouched."""
    entries = _entries(model)
    missing = [k for k in entries if k not in state]
    extra = [k for k in state if k not in entries]
    if missing or extra:
        raise StateDictError("state dict does not fit the model: "
                             + "; ".join(part for part in (
                                 f"missing keys {', '.join(missing)}" if missing else "",
                                 f"unexpected keys {', '.join(extra)}" if extra else "") if part))
    arrays, wrong = {}, []
    for k, (store, key) in entries.items():
        value = state[k]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else to_numpy(value)
        value = np.asarray(value)
        if value.shape != tuple(store[key].shape):
            wrong.append(f"{k} is {tuple(value.shape)}, the model's is {tuple(store[key].shape)}")
        arrays[k] = value
    if wrong:
        raise StateDictError(f"state dict does not fit the model: {'; '.join(wrong)}")
    for k, (store, key) in entries.items():
        old = store[key]
        device = "cuda" if get_array_module(old) is not np else "cpu"
        store[key] = to_device(np.array(arrays[k], dtype=old.dtype, order="C"), device)  # 0-d stays 0-d
    return model


__all__ = ["state_dict", "load_state_dict", "StateDictError", "TORCH_NAMES"]
