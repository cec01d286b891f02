"""Conv2d: 2-D convolution (cross-correlation, as in every framework) on NCHW tensors.

Shapes:
    x: (N, C, H, W)      W: (F, C, k, k)      b: (F,)
    y: (N, F, Ho, Wo)    Ho = (H + 2p − k) // s + 1,  Wo = (W + 2p − k) // s + 1

    y[n, f, i, j] = b[f] + Σ_{c, ki, kj} W[f, c, ki, kj] · xpad[n, c, i·s + ki, j·s + kj]

The fast path unfolds x into cols (C·k·k, N·Ho·Wo) (im2col) and does ONE matrix
product for the whole batch; the backward is two more products and a fold (col2im).
The naive loop versions below are the readable definition that the tests compare
against. The unfolding and the fold are kernels/im2col.py (CPU or CUDA, from the array
module); the products are `minidet.matmul.matmul` (BLAS cut over minidet's threads, or
cuBLAS); the code below is the same on both devices.
"""
from __future__ import annotations

import numpy as np

from kernels import im2col as op
from kernels import direct_conv, winograd
from kernels._device import buffer, output_size

from ..backend import get_array_module
from ..matmul import matmul, matmul_batched
from .base import Layer
from .init import he_normal


# Two CPU formulations beside im2col + one product, each where it was measured faster
# (forward + backward, float32, 2 threads, 2-core machine; benchmarks/profile_step.py):
# - Winograd's F(4×4, 3×3) (kernels/winograd.py) for 3×3 stride-1 layers with at least
#   WINOGRAD_MIN_CHANNELS input channels: 256→256 on 7² (N 32) 31.3 → 19.1 ms, 128→256
#   on 7² 14.8 → 9.6, 64→128 on 7² 4.3 → 3.4, 32→64 on 28² (N 16) 9.1 → 8.4, 64→128 on
#   14² 7.4 → 6.3, 32→64 on 112² (N 8) 81 → 74, 64→128 on 56² 60 → 43; even at 32→64 on 7²
#   (1.55 → 1.66). With 16 channels it was slower but at 224² (16→32 on 14² 1.5 → 2.6,
#   on 56² 13.3 → 16.6, on 224² (N 8) 151 → 142).
# - direct convolution (kernels/direct_conv.py) for stride-1 layers with at most
#   DIRECT_MAX_CHANNELS input channels, or up to DIRECT_WIDE_CHANNELS on maps of at least
#   DIRECT_WIDE_PIXELS: 3→4 on 112² (N 32) 20.9 → 7.9 ms, 4→8 on 56² 4.6 → 3.8, 3→8 on
#   224² (N 16) 54 → 17, 8→16 on 112² 30 → 20, 16→32 on 56² 16.5 → 13.8, 3→16 on 448²
#   (N 8) 150 → 97, 16→32 on 224² 158 → 139; but 8→16 on 28² (N 32) 4.4 → 4.2 (even) and
#   16→32 on 14² 3.3 → 6.4: on small maps with more channels im2col's product wins.
# On the GPU the convolution stays im2col + cuBLAS.
WINOGRAD_MIN_CHANNELS = 32
DIRECT_MAX_CHANNELS = 4
DIRECT_WIDE_CHANNELS, DIRECT_WIDE_PIXELS = 16, 56 * 56
METHODS = ("auto", "im2col", "winograd", "direct")


def _choose(method: str, xp, W, stride: int, x_shape) -> str:
    """The formulation to run: `method` checked, "auto" resolved by the rules above."""
    if method not in METHODS:
        raise ValueError(f"conv2d: method must be one of {', '.join(METHODS)}, got {method!r}")
    F, C, k, _ = W.shape
    fits = {"im2col": True, "winograd": xp is np and k == 3 and stride == 1,
            "direct": xp is np and stride == 1}
    if method == "auto":
        pixels = x_shape[2] * x_shape[3]
        if fits["direct"] and (C <= DIRECT_MAX_CHANNELS
                               or (C <= DIRECT_WIDE_CHANNELS and pixels >= DIRECT_WIDE_PIXELS)):
            return "direct"
        return "winograd" if fits["winograd"] and C >= WINOGRAD_MIN_CHANNELS else "im2col"
    if not fits[method]:
        need = "a 3×3 kernel, stride 1" if method == "winograd" else "stride 1"
        raise ValueError(f"conv2d: method {method} needs {need} and NumPy arrays, got "
                         f"{k}×{k}, stride {stride}, {xp.__name__}")
    return method


def conv2d_forward(x, W, b, stride: int = 1, padding: int = 0, workspace=None, method: str = "auto"):
    """y = conv(x, W) + b via im2col and one matrix product (or one of the CPU forms above).

    x: (N, C, H, W); W: (F, C, k, k); b: (F,). Returns (y (N, F, Ho, Wo), cache).
    `workspace`: an optional dict in which the large buffers are kept between calls.
    `method`: "im2col", "winograd" (3×3, stride 1, CPU), "direct" (stride 1, CPU) or
    "auto" (each where it was measured faster: the rules above).
    """
    xp = get_array_module(x)
    method = _choose(method, xp, W, stride, x.shape)
    if method == "winograd":
        y, cache = winograd.forward(x, W, b, padding, matmul_batched, workspace)
        return y, ("winograd", cache, W)
    if method == "direct":
        dtype = np.result_type(x.dtype, W.dtype)
        x, Wc = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(W, dtype=dtype)
        N, _, H, Wd = x.shape
        y = np.empty((N, W.shape[0], output_size(H, W.shape[2], 1, padding),
                      output_size(Wd, W.shape[3], 1, padding)), dtype=dtype)
        direct_conv.forward(x, Wc, b.astype(dtype, copy=False), padding, y)
        return y, ("direct", (x, Wc, padding), W)
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    Ho = output_size(H, k, stride, padding)
    Wo = output_size(Wd, k, stride, padding)
    dtype = np.result_type(x.dtype, W.dtype)
    cols = buffer(workspace, "cols", (C * k * k, N * Ho * Wo), dtype, xp)
    cols = op.im2col(x.astype(dtype, copy=False), k, stride, padding, cols)
    y2 = matmul(W.reshape(F, -1).astype(dtype, copy=False), cols)  # (F, N·Ho·Wo)
    # Back to NCHW, adding the bias in the same pass.
    y = xp.empty((N, F, Ho * Wo), dtype=dtype)
    xp.add(y2.reshape(F, N, Ho * Wo).transpose(1, 0, 2), b.reshape(1, F, 1), out=y)
    return y.reshape(N, F, Ho, Wo), (cols, x.shape, W, stride, padding)


def conv2d_backward(dy, cache, need_dx: bool = True, workspace=None):
    """Gradients of conv2d_forward. dy: (N, F, Ho, Wo). Returns (dx, dW, db).

    dx is None when `need_dx` is false (a first layer, whose input is the images).
    """
    if isinstance(cache[0], str):   # (the CPU form's name, its cache, W)
        form, inner, W = cache
        if form == "winograd":
            dx, dW, db = winograd.backward(dy, inner, need_dx, matmul_batched, workspace)
        else:
            dx, dW, db = _direct_backward(dy, inner, need_dx)
        return dx, dW.astype(W.dtype, copy=False), db.astype(W.dtype, copy=False)
    xp = get_array_module(dy)
    cols, x_shape, W, stride, padding = cache
    F, C, k, _ = W.shape
    N = dy.shape[0]
    dtype = cols.dtype
    dy2 = buffer(workspace, "dy2", (F, cols.shape[1]), dtype, xp)
    dy2.reshape(F, N, -1)[...] = dy.reshape(N, F, -1).transpose(1, 0, 2)  # (F, N·Ho·Wo)
    db = dy2.sum(axis=1)
    dW = matmul(dy2, cols.T).reshape(W.shape)
    dx = None
    if need_dx:
        dcols = buffer(workspace, "dcols", cols.shape, dtype, xp)
        matmul(W.reshape(F, -1).T.astype(dtype, copy=False), dy2, out=dcols)  # (C·k·k, N·Ho·Wo)
        dx = op.col2im(dcols, x_shape, k, stride, padding)
    return dx, dW.astype(W.dtype, copy=False), db.astype(W.dtype, copy=False)


def _direct_backward(dy, cache, need_dx: bool):
    x, W, padding = cache
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    dW = np.empty_like(W)
    direct_conv.backward_weights(dy, x, padding, W.shape[2], dW)
    dx = None
    if need_dx:
        dx = np.empty_like(x)
        direct_conv.backward_input(dy, W, padding, dx)
    return dx, dW, dy.sum(axis=(0, 2, 3))


def conv2d_forward_naive(x, W, b, stride: int = 1, padding: int = 0):
    """The definition, one output pixel at a time (slow; the reference for tests)."""
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(Wd, k, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((N, F, Ho, Wo), dtype=np.result_type(x, W))
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                patch = xpad[n, :, i * stride : i * stride + k, j * stride : j * stride + k]
                for f in range(F):
                    y[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return y, (x, W, stride, padding)


def conv2d_backward_naive(dy, cache):
    """Gradients of conv2d_forward_naive, pixel by pixel. Returns (dx, dW, db)."""
    x, W, stride, padding = cache
    N, F, Ho, Wo = dy.shape
    k = W.shape[2]
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxpad = np.zeros_like(xpad, dtype=dy.dtype)
    dW = np.zeros_like(W, dtype=dy.dtype)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                rows = slice(i * stride, i * stride + k)
                cols = slice(j * stride, j * stride + k)
                for f in range(F):
                    dW[f] += dy[n, f, i, j] * xpad[n, :, rows, cols]
                    dxpad[n, :, rows, cols] += dy[n, f, i, j] * W[f]
    H, Wd = x.shape[2:]
    dx = dxpad[:, :, padding : padding + H, padding : padding + Wd]
    return dx, dW, dy.sum(axis=(0, 2, 3))


class Conv2d(Layer):
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0).

    params: W (out_channels, in_channels, k, k), He-initialised for a following leaky
    ReLU; b (out_channels,), zeros. Input (N, C, H, W) → output (N, F, Ho, Wo), with
    Ho = (H + 2·padding − k) // stride + 1 (likewise Wo).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float32):
        super().__init__()
        for name, v, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                             ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)):
            if int(v) != v or v < low:
                raise ValueError(f"Conv2d: {name} must be an integer >= {low}, got {v!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        fan_in = self.in_channels * self.kernel_size**2
        k = self.kernel_size
        self.params["W"] = he_normal((self.out_channels, self.in_channels, k, k), fan_in, rng, dtype=dtype)
        self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {"W": None, "b": None}
        # False for a first layer: the images need no gradient, which saves a product and a fold.
        self.need_input_grad = True
        self._workspace = {}

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")

    def output_shape(self, input_shape):
        N, _, H, W = input_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, output_size(H, k, s, p), output_size(W, k, s, p))

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)", self.in_channels)
        H, W = x.shape[2:]
        reach = self.kernel_size - 2 * self.padding
        if H < reach or W < reach:
            raise ValueError(f"{self.label()}: input of {H}×{W} pixels is smaller than the kernel "
                             f"({self.kernel_size}×{self.kernel_size} with padding {self.padding}); "
                             f"input shape {tuple(x.shape)}")
        y, self._cache = conv2d_forward(x, self.params["W"], self.params["b"], self.stride, self.padding,
                                        workspace=self._workspace)
        return y

    def backward(self, dy):
        cache = self._cached()
        dx, self.grads["W"], self.grads["b"] = conv2d_backward(dy, cache, need_dx=self.need_input_grad,
                                                               workspace=self._workspace)
        return dx
