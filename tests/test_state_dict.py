"""models.state_dict / load_state_dict: PyTorch nn.Sequential keys, strict checks that name
the keys, and (where PyTorch is installed) the same outputs from a same-layered
torch.nn.Sequential in both directions."""
from __future__ import annotations

import numpy as np
import pytest

from minidet.layers import BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Permute, Reshape
from minidet.models import darknet_model, load_state_dict, reduced_fast_yolo, state_dict
from minidet.models.state_dict import StateDictError
from minidet.testing import assert_close

from helpers import randomize_batchnorm

TINY_BN = [dict(type="convolutional", filters=4, size=3, stride=1, padding=1, batch_normalize=1, activation="leaky"),
           dict(type="maxpool", size=2, stride=2),
           dict(type="convolutional", filters=6, size=3, stride=1, padding=1, batch_normalize=1, activation="leaky"),
           dict(type="maxpool", size=2, stride=2),
           dict(type="connected", output=2 * 2 * (5 * 2 + 3), activation="linear"),
           dict(type="detection", classes=3, coords=4, side=2, num=2, softmax=0, sqrt=1)]


def bn_model(seed=0):
    model = darknet_model(TINY_BN, input_size=8, S=2, B=2, C=3, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for layer in model.layers:  # running statistics and affine terms away from their defaults
        if isinstance(layer, BatchNorm2d):
            randomize_batchnorm(layer, rng)
    return model


def models():
    return {"fc": lambda seed: reduced_fast_yolo(28, 0.0625, C=3, seed=seed, head="fc"),
            "conv": lambda seed: reduced_fast_yolo(28, 0.0625, C=3, seed=seed, head="conv"),
            "batchnorm": bn_model}


def test_keys_are_torch_sequential_names():
    sd = state_dict(bn_model())
    assert list(sd)[:7] == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                            "1.num_batches_tracked"]
    assert sd["0.weight"].shape == (4, 3, 3, 3) and sd["1.num_batches_tracked"].shape == ()
    fc = state_dict(reduced_fast_yolo(28, 0.0625, C=3, head="fc"))
    linear = [k for k in fc if k.endswith(".weight") and fc[k].ndim == 2]
    assert len(linear) == 3 and all(isinstance(v, np.ndarray) for v in fc.values())


@pytest.mark.parametrize("kind", ["fc", "conv", "batchnorm"])
def test_round_trip_between_two_minidet_models(kind):
    make = models()[kind]
    a, b = make(0).eval(), make(1).eval()
    x = np.random.default_rng(0).random((2, 3, a.input_size, a.input_size)).astype(np.float32)
    assert not np.allclose(a.forward(x), b.forward(x))
    load_state_dict(b, state_dict(a))
    assert np.array_equal(a.forward(x), b.forward(x))


def test_state_dict_is_a_copy():
    model = bn_model()
    sd = state_dict(model)
    sd["0.weight"][...] = 0
    assert np.abs(model.layers[0].params["W"]).sum() > 0


def test_missing_and_unexpected_keys_are_named_and_nothing_is_loaded():
    model, other = bn_model(0), bn_model(1)
    sd = state_dict(other)
    del sd["1.running_var"]
    sd["99.weight"] = np.zeros(3, np.float32)
    before = state_dict(model)
    with pytest.raises(StateDictError, match=r"missing keys 1\.running_var.*unexpected keys 99\.weight"):
        load_state_dict(model, sd)
    assert all(np.array_equal(before[k], v) for k, v in state_dict(model).items())


def test_misshapen_key_is_named_with_both_shapes():
    model = bn_model()
    sd = state_dict(model)
    sd["0.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(StateDictError, match=r"0\.weight is \(4, 3, 5, 5\), the model's is \(4, 3, 3, 3\)"):
        load_state_dict(model, sd)


# --- PyTorch ---------------------------------------------------------------------------


def torch_twin(model):
    """A torch.nn.Sequential with the same layers at the same indices as `model`."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TorchPermute(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return x.permute(*self.dims)

    out = []
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            out.append(nn.Conv2d(layer.params["W"].shape[1], layer.params["W"].shape[0], layer.params["W"].shape[2],
                                 stride=layer.stride, padding=layer.padding))
        elif isinstance(layer, BatchNorm2d):
            out.append(nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum))
        elif isinstance(layer, LeakyReLU):
            out.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, MaxPool2d):
            out.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif isinstance(layer, Flatten):
            out.append(nn.Flatten())
        elif isinstance(layer, Linear):
            out.append(nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, Dropout):
            out.append(nn.Dropout(layer.p))
        elif isinstance(layer, Reshape):
            out.append(nn.Unflatten(1, tuple(layer.shape)))
        elif isinstance(layer, Permute):
            out.append(TorchPermute(tuple(layer.axes)))
        else:
            raise AssertionError(f"no torch twin for {layer!r}")
    return nn.Sequential(*out)


@pytest.mark.parametrize("kind", ["fc", "conv", "batchnorm"])
def test_torch_sequential_computes_the_same_with_minidets_weights_and_back(kind):
    torch = pytest.importorskip("torch")
    make = models()[kind]
    ours = make(0).eval()
    twin = torch_twin(ours).eval()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(ours).items()})  # strict
    x = np.random.default_rng(1).random((2, 3, ours.input_size, ours.input_size)).astype(np.float32)
    with torch.no_grad():
        assert_close(twin(torch.from_numpy(x)).numpy(), ours.forward(x), rtol=1e-4, atol=1e-6, name="minidet → torch")
    # And back: torch's own random weights (and moved running statistics) into a fresh minidet model.
    torch.manual_seed(0)
    twin = torch_twin(ours).train()
    with torch.no_grad():
        twin(torch.rand(4, 3, ours.input_size, ours.input_size))  # moves BatchNorm's running statistics
    twin.eval()
    fresh = make(1).eval()
    load_state_dict(fresh, {k: v.numpy() for k, v in twin.state_dict().items()})
    with torch.no_grad():
        assert_close(fresh.forward(x), twin(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-6, name="torch → minidet")
