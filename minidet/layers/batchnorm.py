"""BatchNorm2d: per-channel normalization of NCHW feature maps, with PyTorch's semantics.

Shapes:
    x, y: (N, C, H, W)     gamma, beta: (C,)     running_mean, running_var: (C,)

Training (`train()`): statistics of the batch, over the m = N·H·W values of each channel,

    mean_c = (1/m) Σ x,   var_c = (1/m) Σ (x − mean_c)²       (the biased variance)
    x̂ = (x − mean_c) / sqrt(var_c + eps),   y = gamma_c · x̂ + beta_c

and the running statistics move towards the batch's, with the *unbiased* variance:

    running_mean ← (1 − momentum) · running_mean + momentum · mean_c
    running_var  ← (1 − momentum) · running_var  + momentum · var_c · m / (m − 1)

Evaluation (`eval()`): x̂ = (x − running_mean) / sqrt(running_var + eps), nothing updated.

Backward in training (the batch statistics depend on x; with g = dy · gamma):

    dx = (1 / sqrt(var + eps)) · (g − mean(g) − x̂ · mean(g · x̂))      means over (N, H, W)
    dgamma = Σ dy · x̂,   dbeta = Σ dy                                  sums over (N, H, W)

In evaluation the statistics are constants: dx = dy · gamma / sqrt(running_var + eps).

The running statistics are state, not parameters (the optimizer never touches them):
they live in `buffers` ("running_mean", "running_var", "num_batches_tracked", the names
PyTorch's state dict uses), are moved by `to(device)` and are saved with the model.
Every line is array-module generic, so the layer runs on NumPy and CuPy arrays alike.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import Layer

AXES = (0, 2, 3)  # the reduction axes of NCHW: everything but the channel


def _per_channel(v):
    return v.reshape(1, -1, 1, 1)


def batchnorm2d_forward(x, gamma, beta, mean, var, eps):
    """y (N, C, H, W) from x and per-channel mean, var (C,) used as given; returns (y, cache)."""
    xp = get_array_module(x)
    inv_std = 1.0 / xp.sqrt(var + eps)
    x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
    y = x_hat * _per_channel(gamma) + _per_channel(beta)
    return y, (x_hat, gamma, inv_std)


def batchnorm2d_backward(dy, cache, batch_statistics: bool):
    """dy (N, C, H, W) → (dx, dgamma (C,), dbeta (C,)). batch_statistics: the forward used the
    batch's mean and variance (training), so they are differentiated through; else constants."""
    x_hat, gamma, inv_std = cache
    dbeta = dy.sum(axis=AXES)
    dgamma = (dy * x_hat).sum(axis=AXES)
    g = dy * _per_channel(gamma)
    if batch_statistics:
        m = dy.shape[0] * dy.shape[2] * dy.shape[3]
        mean_g = _per_channel(gamma * dbeta / m)           # mean(g) per channel
        mean_gx = _per_channel(gamma * dgamma / m)         # mean(g · x̂) per channel
        dx = (g - mean_g - x_hat * mean_gx) * _per_channel(inv_std)
    else:
        dx = g * _per_channel(inv_std)
    return dx, dgamma.astype(gamma.dtype, copy=False), dbeta.astype(gamma.dtype, copy=False)


class BatchNorm2d(Layer):
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1): params gamma (C,) ones, beta (C,)
    zeros; buffers running_mean (C,) zeros, running_var (C,) ones, num_batches_tracked ()."""

    def __init__(self, num_features, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be an integer >= 1, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be > 0, got {eps!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1], got {momentum!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        c = self.num_features
        self.params["gamma"] = np.ones(c, dtype=dtype)
        self.params["beta"] = np.zeros(c, dtype=dtype)
        self.grads = {"gamma": None, "beta": None}
        self.buffers = {"running_mean": np.zeros(c, dtype=dtype), "running_var": np.ones(c, dtype=dtype),
                        "num_batches_tracked": np.zeros((), dtype=np.int64)}

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", self.num_features)
        gamma, beta = self.params["gamma"], self.params["beta"]
        b = self.buffers
        if self.training:
            m = x.shape[0] * x.shape[2] * x.shape[3]
            if m < 2:
                raise ValueError(f"{self.label()}: training needs more than one value per channel, got input "
                                 f"shape {tuple(x.shape)}")
            mean = x.mean(axis=AXES)
            var = ((x - _per_channel(mean)) ** 2).mean(axis=AXES)
            mom = self.momentum
            dt = b["running_mean"].dtype
            b["running_mean"] = ((1 - mom) * b["running_mean"] + mom * mean).astype(dt, copy=False)
            b["running_var"] = ((1 - mom) * b["running_var"] + mom * var * (m / (m - 1))).astype(dt, copy=False)
            b["num_batches_tracked"] = get_array_module(x).asarray(b["num_batches_tracked"] + 1)  # stays 0-d
        else:
            mean, var = b["running_mean"].astype(x.dtype), b["running_var"].astype(x.dtype)
        y, cache = batchnorm2d_forward(x, gamma, beta, mean, var, self.eps)
        self._cache = (cache, self.training)
        return y

    def backward(self, dy):
        cache, training = self._cached()
        dx, self.grads["gamma"], self.grads["beta"] = batchnorm2d_backward(dy, cache, batch_statistics=training)
        return dx

    def to(self, device: str):
        from ..backend import to_device

        super().to(device)
        self.buffers = {k: to_device(v, device) for k, v in self.buffers.items()}
        return self

    def astype(self, dtype):
        super().astype(dtype)
        for k in ("running_mean", "running_var"):
            self.buffers[k] = self.buffers[k].astype(dtype)
        return self
