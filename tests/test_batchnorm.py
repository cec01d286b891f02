"""BatchNorm2d: PyTorch's semantics (batch statistics with the biased variance in training,
running statistics updated with the unbiased one, running statistics in eval), its backward
against finite differences in float64 in both modes, and its running statistics saved with
the model. The comparison with torch.nn.BatchNorm2d runs where PyTorch is installed."""
from __future__ import annotations

import numpy as np
import pytest

from minidet.gradcheck import gradcheck, step_for
from minidet.layers import BatchNorm2d
from minidet.testing import assert_close

from helpers import randomize_batchnorm


def layer_with_state(c=3, seed=0, dtype=np.float32):
    return randomize_batchnorm(BatchNorm2d(c, dtype=dtype), np.random.default_rng(seed))


def test_training_forward_normalizes_with_the_batch_statistics_and_updates_running_ones():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, (4, 3, 5, 6))
    bn = BatchNorm2d(3, momentum=0.1, dtype=np.float64)
    y = bn.forward(x)
    assert_close(y.mean(axis=(0, 2, 3)), np.zeros(3), atol=1e-12)
    assert_close(y.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5), rtol=1e-12)
    assert_close(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    unbiased = x.transpose(1, 0, 2, 3).reshape(3, -1).var(axis=1, ddof=1)
    assert_close(bn.buffers["running_var"], 0.9 * 1.0 + 0.1 * unbiased, rtol=1e-12)
    assert int(bn.buffers["num_batches_tracked"]) == 1


def test_eval_uses_the_running_statistics_and_updates_nothing():
    bn = layer_with_state(dtype=np.float64).eval()
    before = {k: np.array(v, copy=True) for k, v in bn.buffers.items()}
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 4))
    g, b = bn.params["gamma"], bn.params["beta"]
    rm, rv = before["running_mean"], before["running_var"]
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * g[:, None, None] + b[:, None, None]
    assert_close(bn.forward(x), expected, rtol=1e-12)
    for k, v in before.items():
        assert np.array_equal(bn.buffers[k], v), k


def test_gradcheck_in_training_mode():
    x = np.random.default_rng(3).normal(1.0, 2.0, (4, 3, 5, 6))
    bn = layer_with_state()
    assert step_for(bn) == 1e-4  # smooth, and coupled across the channel (see step_for)
    result = gradcheck(bn, x, eps=step_for(bn))
    assert result.passed(1e-7), result


def test_gradcheck_in_eval_mode():
    x = np.random.default_rng(4).normal(size=(2, 3, 5, 4))
    result = gradcheck(layer_with_state().eval(), x)
    assert result.passed(1e-7), result


def test_training_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*more than one value"):
        BatchNorm2d(3).forward(np.zeros((1, 3, 1, 1), np.float32))
    BatchNorm2d(3).eval().forward(np.zeros((1, 3, 1, 1), np.float32))  # eval: fine


def test_wrong_channel_count_names_the_layer_and_shape():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*3 channels.*\(2, 3, 4, 4\)"):
        BatchNorm2d(4).forward(np.zeros((2, 3, 4, 4), np.float32))


def test_float32_stays_float32():
    bn = BatchNorm2d(3)
    y = bn.forward(np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32))
    dx = bn.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == bn.grads["gamma"].dtype == bn.buffers["running_var"].dtype == np.float32


def test_running_statistics_are_saved_with_the_model(tmp_path):
    from minidet.models import load, save
    from minidet.models.darknet import darknet_model

    layers = [dict(type="convolutional", filters=4, size=3, stride=1, padding=1, batch_normalize=1, activation="leaky"),
              dict(type="maxpool", size=2, stride=2),
              dict(type="connected", output=2 * 2 * (5 + 3), activation="linear")]
    model = darknet_model(layers, input_size=4, S=2, B=1, C=3)
    bn = model.layers[1]
    assert isinstance(bn, BatchNorm2d)
    model.forward(np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32))  # moves the stats
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    for k in bn.buffers:
        assert np.array_equal(loaded.layers[1].buffers[k], bn.buffers[k]), k
    assert int(loaded.layers[1].buffers["num_batches_tracked"]) == 1
    model.eval(), loaded.eval()
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 4)).astype(np.float32)
    assert np.array_equal(loaded.forward(x), model.forward(x))


def test_matches_torch_batchnorm2d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    ours = layer_with_state(4, dtype=np.float64)
    ref = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(ours.params["beta"]))
        ref.running_mean.copy_(torch.from_numpy(ours.buffers["running_mean"]))
        ref.running_var.copy_(torch.from_numpy(ours.buffers["running_var"]))
    for step in range(3):  # three training steps: outputs, gradients, running statistics
        x = rng.normal(1.0, 2.0, (3, 4, 5, 2))
        dy = rng.normal(size=x.shape)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = ref(xt)
        yt.backward(torch.from_numpy(dy))
        assert_close(ours.forward(x), yt.detach().numpy(), rtol=1e-12, atol=1e-12, name=f"y step {step}")
        assert_close(ours.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12, name=f"dx step {step}")
        assert_close(ours.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert_close(ours.grads["beta"], ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        ref.weight.grad = ref.bias.grad = None
        assert_close(ours.buffers["running_mean"], ref.running_mean.numpy(), rtol=1e-12, atol=1e-15)
        assert_close(ours.buffers["running_var"], ref.running_var.numpy(), rtol=1e-12)
    assert int(ours.buffers["num_batches_tracked"]) == int(ref.num_batches_tracked) == 3
    ref.eval(), ours.eval()
    x = rng.normal(size=(2, 4, 3, 3))
    assert_close(ours.forward(x), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_is_one_of_the_gradcheck_command_cases():
    from minidet.gradcheck import standard_cases

    names = [name for name, layer, _ in standard_cases() if isinstance(layer, BatchNorm2d)]
    assert len(names) == 2 and any("train" in n for n in names) and any("eval" in n for n in names)


@pytest.mark.gpu
def test_on_cupy_against_numpy():
    from minidet.backend import gpu_available

    if not gpu_available():
        pytest.skip("no CUDA device (CuPy missing or sees none)")
    import cupy as cp

    rng = np.random.default_rng(6)
    cpu = layer_with_state(dtype=np.float64)
    gpu = layer_with_state().to("cuda")
    x = rng.normal(size=(4, 3, 7, 5)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(cpu, mode)(), getattr(gpu, mode)()
        y = gpu.forward(cp.asarray(x))
        assert isinstance(y, cp.ndarray) and y.dtype == np.float32
        assert_close(y, cpu.forward(x.astype(np.float64)), rtol=1e-4, atol=1e-5, name=f"{mode} y")
        assert_close(gpu.backward(cp.asarray(dy)), cpu.backward(dy.astype(np.float64)), rtol=1e-4, atol=1e-5)
        for k in ("gamma", "beta"):
            assert_close(gpu.grads[k], cpu.grads[k], rtol=1e-4, atol=1e-4, name=f"{mode} d{k}")
        for k in ("running_mean", "running_var"):
            assert isinstance(gpu.buffers[k], cp.ndarray)
            assert_close(gpu.buffers[k], cpu.buffers[k], rtol=1e-5, atol=1e-6, name=k)
