"""kernels/roi_pool.py against the CPU RoIPool2d, under Numba's CUDA simulator.

Not collected by a plain `pytest` run; tests/test_roi_pool.py runs it in a subprocess with
NUMBA_ENABLE_CUDASIM=1 (the variable must be set before numba.cuda is first imported). By hand:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/roi_pool_cudasim.py -q

Outputs are poisoned before each launch (NaN, argmax −7), so an element no thread wrote fails.
The kernels add in the CPU loop's order, so float32 and float64 results must equal the CPU's
exactly. Shapes are tiny: the simulator runs every CUDA thread as a Python thread.
"""
import numpy as np
import pytest

from kernels.roi_pool import roi_bins
from minidet.backend import simulator_enabled
from minidet.layers import RoIPool2d

pytestmark = pytest.mark.skipif(not simulator_enabled(), reason="needs NUMBA_ENABLE_CUDASIM=1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size,scale", [((2, 3), 0.5), ((3, 3), 0.25)])
def test_roi_pool_kernels_match_the_cpu(dtype, size, scale):
    from kernels.roi_pool import roi_pool2d_backward_gpu, roi_pool2d_forward_gpu

    rng = np.random.default_rng(7)
    N, C, H, W = 2, 2, 5, 6
    x = rng.integers(-3, 4, (N, C, H, W)).astype(dtype)  # small integers: ties
    rois = np.array([[0, 0, 0, 11, 9], [1, 2, 1, 7, 8], [1, -6, -6, 3, 30], [0, 20, 20, 30, 30],
                     [0, 5, 3, 5, 3], [1, 0.5, 1.5, 9.5, 6.5]])
    oh, ow = size
    pool = RoIPool2d(size, scale)
    y_cpu = pool.forward(x, rois)
    dy = rng.standard_normal(y_cpu.shape).astype(dtype)
    dx_cpu = pool.backward(dy)
    bins = roi_bins(rois, scale, oh, ow, H, W)
    batch = rois[:, 0].astype(np.int64)
    y = np.full(y_cpu.shape, np.nan, dtype)
    argmax = np.full(y_cpu.shape, -7, np.int64)
    roi_pool2d_forward_gpu(x, batch, *bins, out=y, argmax_out=argmax)
    np.testing.assert_array_equal(y, y_cpu)
    np.testing.assert_array_equal(argmax, pool._cache[0])
    assert (argmax == -1).any() and (argmax >= 0).any()  # empty bins and full ones both exercised
    dx = np.full(x.shape, np.nan, dtype)
    roi_pool2d_backward_gpu(dy, argmax, x.shape, batch, *bins, out=dx)
    np.testing.assert_array_equal(dx, dx_cpu)
