"""The CUDA kernels (kernels/) against their NumPy references, under Numba's CUDA simulator.

Not collected by a plain `pytest` run (the name does not match test_*.py, and every test
here skips unless NUMBA_ENABLE_CUDASIM=1). tests/test_kernels.py runs it in a subprocess
with the simulator switched on, since the variable must be set before numba.cuda is
first imported; to run it by hand:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/kernels_cudasim.py -q

The checks themselves are the `check_*(xp, ...)` functions, written against an array
module: here `xp` is NumPy (the simulator runs the kernels on NumPy arrays); on a real GPU,
tests/test_kernels.py calls the same functions with CuPy (`pytest -m gpu`).

Every kernel output is poisoned before the launch (NaN, or a sentinel for int32
argmax), so an element no thread wrote fails. float32 kernels are compared with a float64
reference at rtol 1e-5, float64 kernels at 1e-12; where the kernel does the CPU path's
arithmetic in the CPU path's order (im2col, col2im, leaky ReLU, max-pool) the float32
result must also equal minidet's CPU float32 result bit for bit. Shapes are tiny: the
simulator runs every CUDA thread as a Python thread.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernels._device import output_size
from kernels.im2col import col2im_reference
from minidet.loss_cells import yolo_loss_reference
from minidet.backend import get_array_module, simulator_enabled, to_numpy
from minidet.testing import assert_close

pytestmark = pytest.mark.skipif(not simulator_enabled(),
                                reason="needs NUMBA_ENABLE_CUDASIM=1 (run by tests/test_kernels.py)")

DTYPES = (np.float32, np.float64)
ARGMAX_POISON = -7  # no valid flat index is negative


def rtol_for(dtype) -> float:
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def poisoned(xp, shape, dtype):
    """An output buffer full of NaN (or, for integers, a negative sentinel)."""
    fill = ARGMAX_POISON if np.dtype(dtype).kind == "i" else np.nan
    return xp.full(shape, fill, dtype=dtype)


# -- NumPy references (float64, loops where the loop is the definition) -------------------
# The operations' own references live beside them in kernels/ (col2im_reference,
# maxpool2d_reference, ...); the loss's cell-by-cell one in minidet/loss_cells.py.

# -- cases ---------------------------------------------------------------------------------

# (k, stride, padding): 1×1, stride 2, padding on both strides, a kernel larger than the stride.
IM2COL_CASES = [(1, 1, 0), (1, 2, 0), (2, 2, 0), (2, 1, 1), (3, 1, 1), (3, 2, 1), (3, 2, 0)]
# (k, stride): overlapping windows (k3 s2, k3 s1, k2 s1), the usual k2 s2, and leftovers on 5×5 / 6×7.
MAXPOOL_CASES = [(3, 2), (3, 1), (2, 2), (2, 1)]
YOLO_CASES = ["engineered", "random_b3"]


def im2col_input(dtype, seed=0, shape=(2, 2, 5, 4)):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def maxpool_input(dtype, seed=0, shape=(2, 2, 6, 7)):
    """Values from a few integers, so windows hold ties; one plane constant (all ties)."""
    x = np.random.default_rng(seed).integers(-2, 3, size=shape).astype(dtype)
    x[1, 0] = 1.0
    return x


def yolo_case(name, dtype):
    """(pred, target, S, B, C): border cells, an all-IoU-zero cell, negative sqrt outputs, a tie.

    Returns also `expect`: {(n, i, j): responsible index} for the engineered cells, so the
    test checks that the oracle itself picks what the contract says.
    """
    rng = np.random.default_rng(3)
    if name == "random_b3":
        S, B, C, N = 2, 3, 2, 2
        pred = rng.uniform(-0.5, 1.2, size=(N, S, S, 5 * B + C))
        target = np.zeros((N, S, S, 5 + C))
        target[..., :4] = rng.uniform(0.05, 0.95, size=(N, S, S, 4))
        target[..., 4] = rng.integers(0, 2, size=(N, S, S))
        target[..., 5:] = np.eye(C)[rng.integers(0, C, size=(N, S, S))]
        return pred.astype(dtype), target.astype(dtype), S, B, C, {}
    S, B, C, N = 3, 2, 3, 2
    pred = rng.uniform(-0.3, 1.1, size=(N, S, S, 5 * B + C))
    pred[..., 2:4] = rng.uniform(-0.8, 0.8, size=(N, S, S, 2))      # negative sqrt_w, sqrt_h
    pred[..., 7:9] = rng.uniform(-0.8, 0.8, size=(N, S, S, 2))
    target = np.full((N, S, S, 5 + C), np.nan)                         # empty cells: never read
    target[..., 4] = 0.0
    expect = {}

    def put(n, i, j, box, cls):
        target[n, i, j, :5] = (*box, 1.0)
        target[n, i, j, 5:] = np.eye(C)[cls]

    put(0, 0, 2, (0.95, 0.05, 0.6, 0.5), 0)     # top-right border cell, box past the image edge
    put(0, 2, 0, (0.02, 0.97, 0.3, 0.9), 1)     # bottom-left border cell
    put(1, 1, 1, (0.5, 0.5, 0.2, 0.3), 2)
    put(1, 0, 0, (0.1, 0.1, 0.0004, 0.0004), 1)  # tiny truth: both predictors miss it (IoU 0)
    pred[1, 0, 0, 0:4] = (0.9, 0.9, 0.05, 0.05)       # far: larger squared error
    pred[1, 0, 0, 5:9] = (0.7, 0.6, -0.04, -0.03)     # far too, nearer: the fallback picks 1
    expect[(1, 0, 0)] = 1
    put(1, 2, 2, (0.4, 0.6, 0.25, 0.16), 0)      # two identical predictors: the tie goes to 0
    pred[1, 2, 2, 5:10] = pred[1, 2, 2, 0:5]
    expect[(1, 2, 2)] = 0
    return pred.astype(dtype), target.astype(dtype), S, B, C, expect


# -- checks (xp: numpy under the simulator, cupy on a GPU) --------------------------------

def check_im2col(xp, dtype, k, stride, padding):
    from kernels.im2col import col2im_gpu, im2col_gpu
    from minidet.layers import im2col as cpu

    x = im2col_input(dtype)
    N, C, H, W = x.shape
    Ho, Wo = cpu.output_size(H, k, stride, padding), cpu.output_size(W, k, stride, padding)
    out = poisoned(xp, (C * k * k, N * Ho * Wo), dtype)
    cols = im2col_gpu(xp.asarray(x), k, stride, padding, out=out)
    assert cols is out
    expected = cpu.im2col_reference(x.astype(np.float64), k, stride, padding)
    assert_close(cols, expected, rtol=rtol_for(dtype), name=f"im2col k{k} s{stride} p{padding}")
    np.testing.assert_array_equal(to_numpy(cols), cpu.im2col(x, k, stride, padding))

    dcols = np.random.default_rng(1).standard_normal((C * k * k, N * Ho * Wo)).astype(dtype)
    out = poisoned(xp, x.shape, dtype)
    dx = col2im_gpu(xp.asarray(dcols), x.shape, k, stride, padding, out=out)
    assert dx is out
    # Sums of up to k² terms: atol covers cancellation to near zero.
    assert_close(dx, col2im_reference(dcols, x.shape, k, stride, padding), rtol=rtol_for(dtype),
                 atol=rtol_for(dtype), name=f"col2im k{k} s{stride} p{padding}")
    np.testing.assert_array_equal(to_numpy(dx), cpu.col2im(dcols, x.shape, k, stride, padding))


def check_im2col_allocates(xp):
    """Without `out`, the output is allocated with the input's array module."""
    from kernels.im2col import col2im_gpu, im2col_gpu
    from minidet.layers import im2col as cpu

    x = im2col_input(np.float32, shape=(1, 1, 4, 4))
    cols = im2col_gpu(xp.asarray(x), 3, 1, 1)
    assert isinstance(cols, xp.ndarray) and cols.dtype == np.float32
    assert_close(cols, cpu.im2col_reference(x, 3, 1, 1))
    dx = col2im_gpu(cols, x.shape, 3, 1, 1)
    assert isinstance(dx, xp.ndarray)
    assert_close(dx, col2im_reference(to_numpy(cols), x.shape, 3, 1, 1), rtol=1e-5, atol=1e-6)


def check_leaky_relu(xp, dtype, slope):
    from kernels.leaky_relu import leaky_relu_backward_gpu, leaky_relu_forward_gpu, leaky_relu_reference
    from minidet.layers.leaky_relu import leaky_relu_backward, leaky_relu_forward

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)   # 210 elements: several grid strides
    x.flat[::11] = 0.0                                    # exact zeros take the negative branch
    out = poisoned(xp, x.shape, dtype)
    y = leaky_relu_forward_gpu(xp.asarray(x), slope, out=out)
    assert y is out and y.dtype == dtype
    assert_close(y, leaky_relu_reference(x.astype(np.float64), slope), rtol=rtol_for(dtype), name="leaky forward")
    y_cpu, cache = leaky_relu_forward(x, slope)
    np.testing.assert_array_equal(to_numpy(y), y_cpu)

    dy = rng.standard_normal(x.shape).astype(dtype)
    out = poisoned(xp, x.shape, dtype)
    dx = leaky_relu_backward_gpu(y, xp.asarray(dy), slope, out=out)
    assert dx is out
    expected = np.where(x.astype(np.float64) > 0, dy, slope * dy.astype(np.float64))
    assert_close(dx, expected, rtol=rtol_for(dtype), name="leaky backward")
    np.testing.assert_array_equal(to_numpy(dx), leaky_relu_backward(dy, cache))


def check_maxpool(xp, dtype, k, stride):
    from kernels.maxpool import (maxpool2d_backward_gpu, maxpool2d_backward_reference, maxpool2d_forward_gpu,
                                 maxpool2d_reference)
    from minidet.layers.maxpool import maxpool2d_backward, maxpool2d_forward

    x = maxpool_input(dtype)
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride), output_size(W, k, stride)
    y_out, a_out = poisoned(xp, (N, C, Ho, Wo), dtype), poisoned(xp, (N, C, Ho, Wo), np.int32)
    y, argmax = maxpool2d_forward_gpu(xp.asarray(x), k, stride, out=y_out, argmax_out=a_out)
    assert y is y_out and argmax is a_out and argmax.dtype == np.int32
    y_ref, a_ref = maxpool2d_reference(x.astype(np.float64), k, stride)
    assert_close(y, y_ref, rtol=rtol_for(dtype), name=f"maxpool forward k{k} s{stride}")
    np.testing.assert_array_equal(to_numpy(argmax), a_ref, err_msg=f"argmax k{k} s{stride} (ties: first wins)")

    dy = np.random.default_rng(4).standard_normal((N, C, Ho, Wo)).astype(dtype)
    expected = maxpool2d_backward_reference(dy, a_ref, x.shape)
    _, cache = maxpool2d_forward(x, k, stride)
    dx_cpu = maxpool2d_backward(dy, cache)
    out = poisoned(xp, x.shape, dtype)
    dx = maxpool2d_backward_gpu(xp.asarray(dy), argmax, x.shape, k, stride, out=out)
    assert dx is out
    assert_close(dx, expected, rtol=rtol_for(dtype), atol=rtol_for(dtype), name=f"maxpool backward k{k} s{stride}")
    np.testing.assert_array_equal(to_numpy(dx), dx_cpu, err_msg="maxpool backward vs CPU")


def check_sgd(xp, dtype, weight_decay):
    from kernels.sgd import sgd_update_gpu

    rng = np.random.default_rng(5)
    w, g, v = (rng.standard_normal((7, 11)).astype(dtype) for _ in range(3))
    lr, mu = 0.01, 0.9
    v_ref = mu * v.astype(np.float64) + g + weight_decay * w.astype(np.float64)
    w_ref = w - lr * v_ref
    wd, vd = xp.asarray(w), xp.asarray(v)
    assert sgd_update_gpu(wd, xp.asarray(g), vd, lr, mu, weight_decay) is None
    assert_close(vd, v_ref, rtol=rtol_for(dtype), atol=rtol_for(dtype), name="sgd velocity")
    assert_close(wd, w_ref, rtol=rtol_for(dtype), atol=rtol_for(dtype), name="sgd weight")


def check_sgd_one_launch(xp, dtype, to_device=None):
    """minidet.optim.SGD(multi_tensor=True): one kernel launch a step for every parameter,
    against the per-parameter NumPy SGD; biases undecayed; a replaced parameter array
    (model.to, a load) is picked up with its velocity kept."""
    from kernels import sgd as kernel_module
    from minidet.layers import Conv2d, Flatten, Linear, Sequential
    from minidet.optim import SGD

    def model():
        rng = np.random.default_rng(3)
        return Sequential(Conv2d(2, 3, 3, padding=1, rng=rng, dtype=dtype), Flatten(),
                          Linear(3 * 4 * 4, 5, rng=rng, dtype=dtype))

    ref, dev = model(), model()
    if to_device is not None:
        dev.to(to_device)
    opt_ref = SGD(ref, lr=0.1, weight_decay=0.05, multi_tensor=False)
    opt_dev = SGD(dev, lr=0.1, weight_decay=0.05, multi_tensor=True)
    rng = np.random.default_rng(4)
    launches = []
    launch = kernel_module.launch
    kernel_module.launch = lambda kernel, items, *args: (launches.append(items), launch(kernel, items, *args))[1]
    try:
        for step in range(4):
            for (name, p_ref, g_ref, k), (_, p_dev, g_dev, _) in zip(ref.named_parameters(), dev.named_parameters()):
                g = rng.standard_normal(p_ref[k].shape).astype(dtype)
                g_ref[k], g_dev[k] = g, xp.asarray(g)
            if step == 2:  # replace one parameter array, as model.to or a load does
                layer = dev.layers[0]
                layer.params["W"] = xp.asarray(to_numpy(layer.params["W"]).copy())
            opt_ref.step()
            opt_dev.step()
            for (name, p_ref, _, k), (_, p_dev, _, _) in zip(ref.named_parameters(), dev.named_parameters()):
                assert get_array_module(p_dev[k]) is xp
                assert_close(p_dev[k], p_ref[k], rtol=rtol_for(dtype), atol=rtol_for(dtype),
                             name=f"sgd one launch, step {step}, {name}")
    finally:
        kernel_module.launch = launch
    total = sum(int(p[k].size) for _, p, _, k in dev.named_parameters())
    assert launches == [total] * 4, f"expected one launch of {total} items a step, got {launches}"
    state_ref, state_dev = opt_ref.state_dict(), opt_dev.state_dict()
    assert sorted(state_dev) == sorted(state_ref)
    for key in state_ref:
        if key.startswith("velocity/"):
            assert_close(state_dev[key], state_ref[key], rtol=rtol_for(dtype), atol=rtol_for(dtype), name=key)


def check_yolo_loss(xp, dtype, case, lambda_coord=5.0, lambda_noobj=0.5):
    from kernels.yolo_loss import yolo_loss_gpu, yolo_loss_parts_gpu

    pred, target, S, B, C, expect = yolo_case(case, dtype)
    loss, comps, dpred_ref, parts_ref, resp = yolo_loss_reference(pred, target, S, B, C, lambda_coord, lambda_noobj)
    for cell, b in expect.items():
        assert resp[cell] == b, f"oracle picked predictor {resp[cell]} in cell {cell}, the contract says {b}"
    N = pred.shape[0]
    tol = dict(rtol=rtol_for(dtype), atol=rtol_for(dtype))
    dpred_out, parts_out = poisoned(xp, pred.shape, dtype), poisoned(xp, (N * S * S, 4), dtype)
    dpred, parts = yolo_loss_parts_gpu(xp.asarray(pred), xp.asarray(target), S, B, C, lambda_coord,
                                       lambda_noobj, dpred=dpred_out, parts=parts_out)
    assert dpred is dpred_out and parts is parts_out
    assert_close(dpred, dpred_ref, name=f"yolo dpred ({case})", **tol)
    assert_close(parts, parts_ref, name=f"yolo per-cell parts ({case})", **tol)

    loss_k, comps_k, dpred_k = yolo_loss_gpu(xp.asarray(pred), xp.asarray(target), S, B, C, lambda_coord, lambda_noobj)
    assert isinstance(loss_k, float) and set(comps_k) == {"coord", "obj", "noobj", "cls"}
    assert_close(loss_k, loss, name="yolo loss", **tol)
    for name in comps:
        assert_close(comps_k[name], comps[name], name=f"yolo {name}", **tol)
    assert_close(dpred_k, dpred_ref, name="yolo dpred (allocated)", **tol)

    try:
        from minidet.loss import YoloLoss
    except ImportError:
        return
    ref = YoloLoss(S, B, C, lambda_coord, lambda_noobj)
    value = ref.forward(pred.astype(np.float64), target.astype(np.float64))
    assert_close(loss_k, value, name="yolo loss vs minidet.loss.YoloLoss", **tol)
    assert_close(dpred_k, ref.backward(), name="yolo dpred vs minidet.loss.YoloLoss", **tol)


# -- the simulator tests -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k,stride,padding", IM2COL_CASES)
def test_im2col_col2im(dtype, k, stride, padding):
    check_im2col(np, dtype, k, stride, padding)


def test_im2col_allocates_like_input():
    check_im2col_allocates(np)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("slope", [0.1, 0.0])
def test_leaky_relu(dtype, slope):
    check_leaky_relu(np, dtype, slope)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k,stride", MAXPOOL_CASES)
def test_maxpool(dtype, k, stride):
    check_maxpool(np, dtype, k, stride)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weight_decay", [5e-4, 0.0])
def test_sgd(dtype, weight_decay):
    check_sgd(np, dtype, weight_decay)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sgd_one_launch_for_all_parameters(dtype):
    check_sgd_one_launch(np, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", YOLO_CASES)
def test_yolo_loss(dtype, case):
    check_yolo_loss(np, dtype, case)


def test_defaults_as_the_layers_call_them():
    """The calls minidet.layers makes on a GPU array: no `out`."""
    from kernels import leaky_relu, maxpool
    from kernels.leaky_relu import leaky_relu_reference
    from kernels.maxpool import maxpool2d_backward_reference

    x = maxpool_input(np.float32, shape=(2, 2, 5, 5))
    y = leaky_relu.leaky_relu_forward_gpu(x, 0.1)
    assert y.dtype == np.float32
    assert_close(y, leaky_relu_reference(x.astype(np.float64), 0.1))
    y, argmax = maxpool.maxpool2d_forward_gpu(x, 2, 2)
    dx = maxpool.maxpool2d_backward_gpu(np.ones_like(y), argmax, x.shape, 2, 2)
    assert_close(dx, maxpool2d_backward_reference(np.ones_like(y), argmax, x.shape))
