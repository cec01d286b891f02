"""Gradient checks of every layer in float64, on shapes that catch the classic bugs."""
import numpy as np
import pytest

from minidet.gradcheck import gradcheck
from minidet.layers import (Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Reshape, Sequential)

TOL = 1e-7


def away_from_kinks(shape, seed, margin=1e-2):
    """Standard normal values with |x| > margin: no leaky ReLU kink within reach of ε."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin * 2, x)


def tie_free(shape, seed):
    """A random permutation of well-separated values: no two entries of a pooling window tie."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.01 - n * 0.005).reshape(shape)


CONV_CASES = [
    # (N, C, H, W, F, k, stride, padding)
    (2, 3, 7, 6, 4, 3, 1, 1),    # batch > 1, non-square, odd sizes
    (2, 3, 9, 7, 2, 3, 2, 1),    # stride 2 with a remainder
    (3, 2, 5, 8, 3, 5, 1, 2),    # 5×5, padding 2
    (2, 2, 8, 9, 3, 5, 2, 0),    # 5×5 stride 2, no padding
    (2, 4, 5, 6, 3, 1, 1, 0),    # the paper's 1×1 bottleneck (no unfolding)
    (2, 3, 6, 5, 2, 1, 2, 1),    # 1×1 with stride and padding (unfolded)
    (1, 2, 6, 6, 3, 3, 1, 0),    # padding 0
    (2, 2, 4, 5, 2, 3, 1, 2),    # padding 2 with a small image
]


@pytest.mark.parametrize("N,C,H,W,F,k,s,p", CONV_CASES)
def test_conv2d_gradcheck(N, C, H, W, F, k, s, p):
    layer = Conv2d(C, F, k, stride=s, padding=p, rng=np.random.default_rng(1))
    layer.params["b"] = np.random.default_rng(2).standard_normal(F).astype(np.float32)
    result = gradcheck(layer, np.random.default_rng(3).standard_normal((N, C, H, W)))
    assert result.passed(TOL), str(result)
    assert set(result.errors) == {"dx", "W", "b"}


@pytest.mark.parametrize("k,s,shape", [(2, 2, (2, 3, 6, 8)), (3, 2, (2, 2, 7, 9)), (3, 1, (2, 2, 5, 6)),
                                       (2, 1, (1, 3, 5, 4)), (2, 2, (2, 2, 7, 5))])
def test_maxpool_gradcheck_overlapping_and_remainders(k, s, shape):
    result = gradcheck(MaxPool2d(k, s), tie_free(shape, seed=k * 10 + s))
    assert result.passed(TOL), str(result)


def test_leaky_relu_gradcheck():
    result = gradcheck(LeakyReLU(0.1), away_from_kinks((2, 3, 5, 7), seed=4))
    assert result.passed(TOL), str(result)


def test_linear_flatten_reshape_dropout_gradcheck():
    x = np.random.default_rng(5).standard_normal((3, 2, 3, 4))
    for layer in (Flatten(), Reshape(4, 6), Sequential(Flatten(), Linear(24, 5, rng=np.random.default_rng(6))),
                  Dropout(0.3, seed=7)):
        result = gradcheck(layer, x)
        assert result.passed(TOL), f"{layer!r}: {result}"


def test_sequential_gradcheck_whole_stack():
    rng = np.random.default_rng(8)
    net = Sequential(
        Conv2d(3, 4, 3, padding=1, rng=rng), LeakyReLU(), MaxPool2d(3, 2),
        Conv2d(4, 5, 1, rng=rng), LeakyReLU(), Conv2d(5, 3, 3, stride=2, padding=2, rng=rng), LeakyReLU(),
        Flatten(), Linear(3 * 3 * 3, 6, rng=rng), LeakyReLU(), Dropout(0.5, seed=1), Linear(6, 4, rng=rng),
    )
    result = gradcheck(net, np.random.default_rng(9).standard_normal((2, 3, 7, 8)))
    assert result.passed(TOL), str(result)
    # Every parameter of every layer was checked.
    assert {n for n in result.errors if n != "dx"} == {n for n, *_ in net.named_parameters()}


def test_gradcheck_catches_a_wrong_backward():
    """A max-pool backward that ignores overlaps (routes only the last window's gradient) fails."""

    class BrokenPool(MaxPool2d):
        def backward(self, dy):
            argmax, shape = self._cached()[:2]
            dx = np.zeros(shape)
            flat = dx.reshape(shape[0], shape[1], -1)
            for n in range(shape[0]):
                for c in range(shape[1]):
                    flat[n, c, argmax[n, c].ravel()] = dy[n, c].ravel()  # '=' loses overlapping sums
            return dx

    x = tie_free((1, 1, 5, 5), seed=0)
    x[0, 0, 2, 2] = 100.0  # the centre is the max of all four overlapping 3×3 windows
    assert gradcheck(MaxPool2d(3, 1), x).passed(TOL)
    assert not gradcheck(BrokenPool(3, 1), x).passed(TOL)


def test_gradcheck_does_not_modify_the_layer():
    layer = Conv2d(2, 3, 3, rng=np.random.default_rng(0))
    W = layer.params["W"].copy()
    gradcheck(layer, np.random.default_rng(1).standard_normal((1, 2, 4, 4)))
    assert layer.params["W"].dtype == np.float32 and np.array_equal(layer.params["W"], W)


def test_params_dict_is_the_source_of_truth():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    x = np.ones((1, 3))
    layer.params["W"] = np.zeros((2, 3))
    layer.params["b"] = np.array([1.0, 2.0])
    np.testing.assert_array_equal(layer.forward(x), [[1.0, 2.0]])


def test_backward_overwrites_grads():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    dy = np.ones((4, 2), np.float32)
    layer.forward(x)
    layer.backward(dy)
    first = layer.grads["W"].copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_array_equal(layer.grads["W"], first)


def test_dropout_train_and_eval():
    x = np.ones((200, 50), np.float32)
    drop = Dropout(0.4, seed=0)
    y = drop.forward(x)
    kept = y != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], 1 / 0.6, rtol=1e-6)
    np.testing.assert_array_equal(drop.backward(x), y)  # same mask in backward
    drop.eval()
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    rng = np.random.default_rng(0)
    net = Sequential(Conv2d(3, 4, 3, padding=1, rng=rng), LeakyReLU(), MaxPool2d(2), Flatten(),
                     Linear(4 * 4 * 4, 5, rng=rng), Dropout(0.5))
    net.astype(dtype)
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    y = net.forward(x)
    dx = net.backward(np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(g[k].dtype == dtype for _, p, g, k in net.named_parameters())


def test_float64_input_to_float32_layer_gives_float64():
    layer = Conv2d(2, 3, 3, rng=np.random.default_rng(0))
    y = layer.forward(np.random.default_rng(1).standard_normal((1, 2, 5, 5)))
    assert y.dtype == np.float64


def test_sequential_eval_and_train_reach_every_layer():
    """eval() is passed to every layer (a Dropout left in training mode would drop units at
    evaluation), train() too; two evaluation forwards of the same input agree exactly."""
    rng = np.random.default_rng(0)
    inner = Sequential(Linear(6, 6, rng=rng), Dropout(0.5, seed=1))
    net = Sequential(Linear(4, 6, rng=rng), LeakyReLU(), Dropout(0.5, seed=0), inner, Linear(6, 3, rng=rng))
    x = rng.standard_normal((5, 4)).astype(np.float32)

    def every_layer(model):
        for layer in model.layers:
            yield layer
            if isinstance(layer, Sequential):
                yield from every_layer(layer)

    assert net.eval() is net
    assert [layer.training for layer in every_layer(net)] == [False] * 7 and not net.training
    first, second = net.forward(x), net.forward(x)
    np.testing.assert_array_equal(first, second)
    no_dropout = Sequential(net.layers[0], net.layers[1], inner.layers[0], net.layers[4])
    np.testing.assert_allclose(first, no_dropout.forward(x), rtol=1e-6)  # eval: Dropout is the identity
    net.train()
    assert [layer.training for layer in every_layer(net)] == [True] * 7 and net.training
    assert not np.array_equal(net.forward(x), first)  # dropout is drawing masks again


def test_cpu_maxpool_ties_go_to_the_first_maximum():
    """Hand-computed: in each 2×2 window the gradient goes to the first maximum in row-major
    order; overlapping windows (k 3, stride 1) sharing that position add there."""
    x = np.array([[[[1., 5., 5., 0.],
                    [5., 2., 5., 5.],
                    [0., 0., 3., 3.],
                    [0., 0., 3., 3.]]]], np.float32)
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[5, 5], [0, 3]])
    dx = pool.backward(np.array([[[[1., 2.], [3., 4.]]]], np.float32))
    np.testing.assert_array_equal(dx[0, 0], [[0, 1, 2, 0],
                                             [0, 0, 0, 0],
                                             [3, 0, 4, 0],
                                             [0, 0, 0, 0]])
    flat = np.full((1, 1, 4, 4), 7.0)  # every entry ties: the first of each 3×3 window
    pool3 = MaxPool2d(3, stride=1)
    pool3.forward(flat)
    dx = pool3.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_cpu_leaky_relu_at_exactly_zero_and_in_float32():
    """At x = 0 the slope is a (y = 0 is not > 0), and float32 arithmetic stays float32: the
    negative side is float32(a)·x rounded once, as a loop over the elements computes it."""
    relu = LeakyReLU(0.1)
    x = np.array([-2.0, -0.0, 0.0, 3.0], np.float32)
    relu.forward(x)
    np.testing.assert_array_equal(relu.backward(np.ones(4, np.float32)), np.float32([0.1, 0.1, 0.1, 1.0]))
    values = np.random.default_rng(0).standard_normal(4096).astype(np.float32) * np.float32(3)
    y = LeakyReLU(0.1).forward(values)
    a = np.float32(0.1)
    expected = np.array([v if v > 0 else a * v for v in values], np.float32)  # float32 × float32
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, expected)
    # The float64 slope rounds differently for some of these: the test can tell the two apart.
    assert (np.float32(0.1 * values.astype(np.float64)) != expected).any()
