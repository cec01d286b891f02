"""Winograd's F(4×4, 3×3) (kernels/winograd.py): the definition against the direct
convolution, the CPU form against the definition, the backward against finite differences
in float64, and where Conv2d uses it."""
import numpy as np
import pytest

from kernels import winograd
from minidet.gradcheck import gradcheck, numerical_gradient, step_for, worst
from minidet.layers import Conv2d, conv2d_backward, conv2d_forward, conv2d_forward_naive

# (N, C, F, H, W, padding): odd and even sizes (a last tile past the edge), no padding, a
# 1×1 image with padding 1, non-square.
SHAPES = [(2, 3, 4, 7, 7, 1), (1, 2, 3, 8, 6, 1), (2, 3, 2, 5, 5, 0), (2, 2, 3, 6, 9, 2), (3, 4, 2, 1, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_reference_and_cpu_form_equal_the_direct_convolution(shape):
    N, C, F, H, W, p = shape
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, 3, 3)), rng.standard_normal(F)
    direct, _ = conv2d_forward_naive(x, w, b, stride=1, padding=p)
    np.testing.assert_allclose(winograd.winograd_reference(x, w, b, p), direct, rtol=1e-12, atol=1e-12)
    y, _ = conv2d_forward(x, w, b, 1, p, method="winograd")
    np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)


# Not the 1×1 image: there eight of the nine taps touch only padding, their gradient is
# 0 by structure, and the transforms' rounding (~1e-17) is all the finite difference
# sees; the comparison with im2col below covers that case.
@pytest.mark.parametrize("shape", SHAPES[:-1])
def test_backward_matches_finite_differences_in_float64(shape):
    N, C, F, H, W, p = shape
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, 3, 3)), rng.standard_normal(F)
    y, cache = conv2d_forward(x, w, b, 1, p, method="winograd")
    dy = rng.standard_normal(y.shape)
    dx, dW, db = conv2d_backward(dy, cache)
    for name, arr, analytic in (("x", x, dx), ("W", w, dW), ("b", b, db)):
        # linear in each argument: no truncation error, and a large step keeps rounding small
        numeric = numerical_gradient(lambda: conv2d_forward(x, w, b, 1, p, method="winograd")[0], arr,
                                     eps=1e-2, dy=dy)
        err, where = worst(analytic, numeric)
        assert err < 1e-7, (name, where, err)
    # and it is the same gradient as im2col's
    _, c2 = conv2d_forward(x, w, b, 1, p, method="im2col")
    for a, r in zip((dx, dW, db), conv2d_backward(dy, c2)):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)


def test_backward_of_a_one_pixel_image_equals_im2cols():
    N, C, F, H, W, p = SHAPES[-1]
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, 3, 3)), rng.standard_normal(F)
    y, cache = conv2d_forward(x, w, b, 1, p, method="winograd")
    dy = rng.standard_normal(y.shape)
    _, c2 = conv2d_forward(x, w, b, 1, p, method="im2col")
    for a, r in zip(conv2d_backward(dy, cache), conv2d_backward(dy, c2)):
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-12)


def test_float32_stays_near_the_float64_truth_and_reuses_its_workspace():
    # F(4×4)'s transforms hold 4, 5, 8 and 1/24: in float32 it rounds about 10× more than
    # im2col's one product (measured 3e-6 to 1e-5 of each output's range against 2e-7 to
    # 5e-7, this shape to the 256-channel 7×7 layer), which is the bound asserted here.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 64, 7, 7))
    w = rng.standard_normal((32, 64, 3, 3)) * (2 / (9 * 64)) ** 0.5
    b = rng.standard_normal(32)
    truth, c_truth = conv2d_forward(x, w, b, 1, 1, method="im2col")
    dy = rng.standard_normal(truth.shape)
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    ws = {}
    first, _ = conv2d_forward(*f32[:3], 1, 1, workspace=ws, method="winograd")
    second, cache = conv2d_forward(*f32[:3], 1, 1, workspace=ws, method="winograd")
    assert first.dtype == np.float32 and np.array_equal(first, second) and {"V", "M", "U", "xpad"} <= set(ws)
    grads = conv2d_backward(f32[3], cache, workspace=ws)
    for name, a, r in zip(("y", "dx", "dW", "db"), (second, *grads), (truth, *conv2d_backward(dy, c_truth))):
        assert a.dtype == np.float32, name
        assert np.abs(a - r).max() < 2e-5 * np.abs(r).max(), (name, np.abs(a - r).max() / np.abs(r).max())


def test_conv2d_uses_winograd_where_it_was_measured_faster():
    rng = np.random.default_rng(3)
    for c_in, stride, k, expected in ((32, 1, 3, True), (16, 1, 3, False), (64, 2, 3, False), (64, 1, 1, False)):
        layer = Conv2d(c_in, 4, k, stride=stride, padding=k // 2, rng=rng)
        layer.forward(rng.standard_normal((1, c_in, 6, 6)).astype(np.float32))
        assert isinstance(layer._cache[0], str) == expected, (c_in, stride, k)


def test_a_64_channel_conv2d_passes_the_gradient_check():
    rng = np.random.default_rng(4)
    layer = Conv2d(64, 2, 3, padding=1, rng=rng)
    result = gradcheck(layer, rng.standard_normal((2, 64, 5, 4)), eps=step_for(layer))
    assert result.passed(), result


def test_bad_method_is_named():
    x, w, b = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros(3)
    with pytest.raises(ValueError, match="method must be one of auto, im2col, winograd, direct"):
        conv2d_forward(x, w, b, 1, 1, method="fft")
    with pytest.raises(ValueError, match="method winograd needs a 3×3 kernel, stride 1"):
        conv2d_forward(x, w, b, 2, 1, method="winograd")


def test_the_transforms_are_the_papers_constants():
    # m = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 4×4 correlation of the 6×6 patch d by g.
    rng = np.random.default_rng(5)
    d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    m = winograd.AT @ ((winograd.G @ g @ winograd.G.T) * (winograd.BT @ d @ winograd.BT.T)) @ winograd.AT.T
    direct = np.array([[(d[i:i + 3, j:j + 3] * g).sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(m, direct, rtol=1e-12, atol=1e-12)
