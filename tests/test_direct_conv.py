"""Direct convolution for few input channels (kernels/direct_conv.py): against the
definition, finite differences in float64, float32 near the truth, the same weight
gradient for any thread count, and where Conv2d uses it."""
import numba
import numpy as np
import pytest

from kernels import direct_conv
from minidet.gradcheck import numerical_gradient, worst
from minidet.layers import Conv2d, conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive

# (N, C, F, H, W, k, padding): padding 0, 1 and past the kernel's reach, k 1/3/5,
# non-square, a 1×1 image whose taps mostly read padding.
SHAPES = [(2, 3, 4, 7, 6, 3, 1), (1, 1, 2, 5, 9, 3, 0), (2, 2, 3, 6, 5, 5, 2), (2, 3, 2, 4, 4, 3, 3),
          (3, 3, 2, 6, 7, 1, 0), (2, 3, 2, 1, 1, 3, 1)]


def _case(shape, seed):
    N, C, F, H, W, k, p = shape
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, k, k)), rng.standard_normal(F), p,
            rng)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_equal_the_definition(shape):
    x, w, b, p, rng = _case(shape, 0)
    y, cache = conv2d_forward(x, w, b, 1, p, method="direct")
    ref, ref_cache = conv2d_forward_naive(x, w, b, 1, p)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(conv2d_backward(dy, cache), conv2d_backward_naive(dy, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_backward_matches_finite_differences_in_float64(shape):
    x, w, b, p, rng = _case(shape, 1)
    y, cache = conv2d_forward(x, w, b, 1, p, method="direct")
    dy = rng.standard_normal(y.shape)
    dx, dW, db = conv2d_backward(dy, cache)
    for name, arr, analytic in (("x", x, dx), ("W", w, dW), ("b", b, db)):
        numeric = numerical_gradient(lambda: conv2d_forward(x, w, b, 1, p, method="direct")[0], arr,
                                     eps=1e-2, dy=dy)   # linear in each argument: a large step is exact
        err, where = worst(analytic, numeric)
        assert err < 1e-7, (name, where, err)


def test_float32_stays_near_the_truth_and_skips_dx_for_a_first_layer():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 3, 40, 36)), rng.standard_normal((8, 3, 3, 3)) * 0.3, rng.standard_normal(8)
    truth, c_truth = conv2d_forward(x, w, b, 1, 1, method="im2col")
    dy = rng.standard_normal(truth.shape)
    y, cache = conv2d_forward(*(a.astype(np.float32) for a in (x, w, b)), 1, 1, method="direct")
    dx, dW, db = conv2d_backward(dy.astype(np.float32), cache)
    for name, got, want in zip(("y", "dx", "dW", "db"), (y, dx, dW, db), (truth, *conv2d_backward(dy, c_truth))):
        assert got.dtype == np.float32, name
        assert np.abs(got - want).max() < 2e-6 * np.abs(want).max(), name
    assert conv2d_backward(dy.astype(np.float32), cache, need_dx=False)[0] is None


def test_the_weight_gradient_is_the_same_for_any_thread_count():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3, 30, 30)).astype(np.float32)
    dy = rng.standard_normal((8, 4, 30, 30)).astype(np.float32)
    grads = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            dW = np.empty((4, 3, 3, 3), np.float32)
            direct_conv.backward_weights(dy, x, 1, 3, dW)
            grads.append(dW)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(grads[0], g) for g in grads)


def test_conv2d_uses_it_where_it_measured_faster():
    # few channels on any map; up to 16 on maps of 56×56 and more; never at stride 2
    rng = np.random.default_rng(4)
    for c_in, side, stride, expected in ((3, 6, 1, "direct"), (1, 6, 1, "direct"), (4, 6, 1, "direct"),
                                         (5, 6, 1, None), (8, 28, 1, None), (8, 56, 1, "direct"),
                                         (16, 56, 1, "direct"), (17, 56, 1, None), (3, 6, 2, None)):
        layer = Conv2d(c_in, 4, 3, stride=stride, padding=1, rng=rng)
        layer.forward(rng.standard_normal((1, c_in, side, side)).astype(np.float32))
        assert (layer._cache[0] if isinstance(layer._cache[0], str) else None) == expected, (c_in, side, stride)


def test_a_strided_direct_convolution_is_refused_by_name():
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="method direct needs stride 1"):
        conv2d_forward(x, w, b, 2, 1, method="direct")


def test_the_cpu_convolution_forms_compute_float32_in_float32():
    # A bare 4 or 1/6 in a Numba loop is a float64 constant and turns float32 arithmetic
    # into float64 (half the SIMD lanes): compile each CPU kernel afresh for float32 (the
    # cached ones cannot be inspected) and look for double-precision arithmetic in its IR.
    import re

    from numba import njit, types

    from kernels import winograd

    f32, i64 = types.float32, types.int64
    a3, a4 = types.Array(f32, 3, "C"), types.Array(f32, 4, "C")
    cases = [(direct_conv.forward, (a4, a4, types.Array(f32, 1, "C"), i64, a4)),
             (direct_conv.backward_input, (a4, a4, i64, a4)),
             (direct_conv.backward_weights, (a4, a4, i64, i64, a4)),
             (winograd.input_transform, (a4, i64, i64, a3)),
             (winograd.input_transform_adjoint, (a3, i64, i64, i64, a4)),
             (winograd.output_transform, (a3, types.Array(f32, 1, "C"), i64, i64, a4)),
             (winograd.output_transform_adjoint, (a4, i64, i64, f32, a3))]
    double_op = re.compile(r"= (?:fadd|fsub|fmul|fdiv|fpext|sitofp)[^\n]*\bdouble\b")
    for kernel, sig in cases:
        fresh = njit(sig, parallel=True)(kernel.py_func)
        ir = "\n".join(fresh.inspect_llvm().values())
        assert "float" in ir and not double_op.findall(ir), (kernel.__name__, double_op.findall(ir)[:3])
