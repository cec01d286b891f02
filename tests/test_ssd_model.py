"""TappedTrunk (a trunk with heads on several maps) and the SSD-lite model: shapes, layout,
gradients end to end in float64, save/load, bad input, overfitting a few images."""
import numpy as np
import pytest

from minidet.boxes import box_iou
from minidet.gradcheck import numerical_gradient, worst
from minidet.layers import BatchNorm2d, Conv2d, LeakyReLU, MaxPool2d, Permute, Sequential, TappedTrunk
from minidet.models import SSDModel, load, load_checkpoint, save, ssd_lite
from minidet.ssd import MultiboxLoss, default_boxes, match


def _no_kinks(x):
    return np.where(np.abs(x) < 0.05, 0.1, x)


def tiny_trunk(rng):
    trunk = [Conv2d(3, 3, 3, padding=1, rng=rng), LeakyReLU(), MaxPool2d(2),           # 0-2: 4×4
             Conv2d(3, 2, 3, stride=2, padding=1, rng=rng), LeakyReLU()]               # 3-4: 2×2
    heads = {1: Sequential(Conv2d(3, 2, 1, rng=rng)),            # reads the LeakyReLU that also feeds the pool
             4: Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), Permute(0, 2, 3, 1))}
    return TappedTrunk(trunk, heads)


def test_tapped_trunk_sums_the_gradients_of_a_shared_map():
    rng = np.random.default_rng(0)
    net = tiny_trunk(rng).astype(np.float64)
    x = _no_kinks(rng.standard_normal((2, 3, 8, 8)))
    outs = net.forward(x)
    assert [o.shape for o in outs] == [(2, 2, 8, 8), (2, 2, 2, 3)]
    dys = [rng.standard_normal(o.shape) for o in outs]
    dx = net.backward(dys)
    analytic = {"dx": dx, **{name: g[k].copy() for name, _, g, k in net.named_parameters()}}
    assert set(analytic) >= {"trunk.0.W", "trunk.3.b", "heads.1.0.W", "heads.4.0.b"}

    def value():   # every output, flat: differenced entry by entry against the flat dys
        return np.concatenate([o.ravel() for o in net.forward(x)])

    flat_dy = np.concatenate([dy.ravel() for dy in dys])
    targets = [("dx", x)] + [(name, p[k]) for name, p, _, k in net.named_parameters()]
    for name, arr in targets:
        err, where = worst(analytic[name], numerical_gradient(value, arr, dy=flat_dy))
        assert err < 1e-7, (name, where)
    # without the head's share at tap 1, dx would be wrong: the sum is what makes it right
    net.forward(x)
    only_trunk = net.backward([np.zeros_like(dys[0]), dys[1]])
    assert np.abs(only_trunk - dx).max() > 1e-3


def test_tapped_trunk_rejects_bad_taps():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="last trunk layer"):
        TappedTrunk([Conv2d(3, 3, 1, rng=rng), LeakyReLU()], {0: Conv2d(3, 1, 1, rng=rng)})
    with pytest.raises(ValueError, match="tap indices"):
        TappedTrunk([LeakyReLU()], {3: LeakyReLU()})


def tiny_ssd(seed=0, C=2, batch_norm=False):
    """An SSDModel on 8×8 images: maps 4 and 2, two boxes per cell, 40 priors; with
    batch_norm, a BatchNorm2d after the last convolution, as `ssd_lite(batch_norm=True)`."""
    rng = np.random.default_rng(seed)
    trunk = [Conv2d(3, 3, 3, padding=1, rng=rng), LeakyReLU(), MaxPool2d(2),
             Conv2d(3, 3, 3, padding=1, rng=rng), LeakyReLU(),
             Conv2d(3, 2, 3, stride=2, padding=1, rng=rng)] + ([BatchNorm2d(2)] if batch_norm else []) + [LeakyReLU()]
    heads = {i: Sequential(Conv2d(c, 2 * (5 + C), 3, padding=1, rng=rng), Permute(0, 2, 3, 1))
             for i, c in ((4, 3), (len(trunk) - 1, 2))}
    priors = default_boxes([4, 2], [0.3, 0.6, 0.9], [[], []])
    arch = {"name": "tiny", "kwargs": {}}
    return SSDModel(TappedTrunk(trunk, heads), priors, (4, 2), (2, 2), C, 8, arch)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_tiny_ssd_gradcheck_end_to_end(batch_norm):
    rng = np.random.default_rng(1)
    # With BatchNorm the loss is larger and its rounding (≈ 1e-16·|L|/ε) reaches the relative
    # error of the smallest gradient entries (1e-5 of the largest) for some weights: seed 0
    # gives 3.6e-7 on an entry of 3.7e-5, at ε = 1e-5 and 3e-5 alike. Seed 2's entries stay
    # clear of that floor; the ε that avoids the leaky ReLU's kink is the same 1e-5.
    model = tiny_ssd(seed=2 if batch_norm else 0, batch_norm=batch_norm)
    model.astype(np.float64)
    images = rng.uniform(0, 1, (2, 3, 8, 8))
    truths = [np.array([[0.1, 0.1, 0.5, 0.45], [0.4, 0.5, 0.95, 0.9]]), np.array([[0.2, 0.3, 0.6, 0.7]])]
    labels = [np.array([0, 1]), np.array([1])]
    targets = [match(t, lab, model.priors) for t, lab in zip(truths, labels)]
    loc_t = np.stack([t[0] for t in targets])
    conf_t = np.stack([t[1] for t in targets])
    loss = MultiboxLoss()
    loc, conf = model.forward(images)
    assert loc.shape == (2, 40, 4) and conf.shape == (2, 40, 3)
    loss.forward(loc, conf, loc_t, conf_t)
    fixed = loss.negatives.copy()
    assert model.backward(*loss.backward()) is None
    analytic = {name: g[k].copy() for name, _, g, k in model.named_parameters()}

    def value():
        return MultiboxLoss().forward(*model.forward(images), loc_t, conf_t, negatives=fixed)

    for name, p, _, k in model.named_parameters():
        err, where = worst(analytic[name], numerical_gradient(value, p[k]))
        assert err < 1e-7, (name, where)


def test_ssd_model_layout_follows_the_priors():
    """Prediction a of the output is the head's channel block of prior a's map, cell and box."""
    model = tiny_ssd()
    images = np.random.default_rng(2).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    loc, conf = model.forward(images)
    raw = model.net.forward(images)                           # NHWC per map: (1, f, f, k·(5 + C))
    # prior 16 + 2·(2·1 + 1) + 1 = 23: map 1 (2×2), row 1, column 0... (16 priors on map 0)
    f, k = 2, 2
    i, j, b = 1, 0, 1
    a = 4 * 4 * 2 + (i * f + j) * k + b
    assert np.allclose(model.priors[a, :2], [(j + 0.5) / f, (i + 0.5) / f])
    block = raw[1][0, i, j, b * 7:(b + 1) * 7]
    assert np.array_equal(loc[0, a], block[:4]) and np.array_equal(conf[0, a], block[4:])


def test_ssd_lite_shapes_and_priors():
    model = ssd_lite()
    assert model.priors.shape == (4 * (14 * 14 + 7 * 7 + 4 * 4 + 2 * 2 + 1), 4)
    loc, conf = model.forward(np.zeros((2, 3, 112, 112), np.float32))
    assert loc.shape == (2, 1064, 4) and conf.shape == (2, 1064, 21)
    assert loc.dtype == np.float32 and conf.dtype == np.float32
    assert [o.shape[1] for o in model.net.forward(np.zeros((1, 3, 112, 112), np.float32))] == [14, 7, 4, 2, 1]


@pytest.mark.parametrize("kwargs, word", [(dict(input_size=100), "input_size must be 7·2"),
                                          (dict(width=0), "width"), (dict(C=0), "C must be")])
def test_ssd_lite_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ssd_lite(**kwargs)


def test_ssd_lite_bad_images_and_gradients():
    model = ssd_lite(56, 0.125, C=3)
    with pytest.raises(ValueError, match=r"ssd_lite: expected images of shape \(N, 3, 56, 56\), got \(1, 3, 112, 112\)"):
        model.forward(np.zeros((1, 3, 112, 112), np.float32))
    loc, conf = model.forward(np.zeros((1, 3, 56, 56), np.float32))
    with pytest.raises(ValueError, match=r"expected dloc \(1, 1064, 4\) and dconf \(1, 1064, 4\)"):
        model.backward(loc, conf[..., :3])


def test_ssd_lite_save_load_round_trip(tmp_path):
    model = ssd_lite(56, 0.125, C=3, seed=4)
    path = tmp_path / "ssd.npz"
    save(model, path, classes=["a", "b", "c"])
    again, meta = load_checkpoint(path)
    assert isinstance(again, SSDModel) and again.arch == model.arch and meta["classes"] == ["a", "b", "c"]
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 56, 56)).astype(np.float32)
    for a, b in zip(model.forward(x), again.forward(x)):
        assert np.array_equal(a, b)
    assert np.array_equal(again.priors, model.priors)
    other = ssd_lite(56, 0.125, C=3, seed=5)
    assert not np.array_equal(other.forward(x)[1], model.forward(x)[1])
    assert isinstance(load(path), SSDModel)


def test_ssd_lite_batch_norm_keeps_its_running_statistics_in_checkpoints(tmp_path):
    # The running statistics are what eval mode normalises with: a checkpoint that dropped
    # them would give another network at test time than the one validated during training.
    model = ssd_lite(56, 0.125, C=3, seed=4, batch_norm=True)
    x = np.random.default_rng(0).uniform(0, 1, (4, 3, 56, 56)).astype(np.float32)
    model.train()
    model.forward(x)            # moves the running statistics away from (0, 1)
    names = [name for name, _, _ in model.named_buffers()]
    assert len(names) == 3 * 15 and names[0] == "trunk.1.running_mean"   # 9 trunk + 6 extra convolutions
    save(model, tmp_path / "ssd.npz", classes=["a", "b", "c"])
    again, _ = load_checkpoint(tmp_path / "ssd.npz")
    assert again.arch["kwargs"]["batch_norm"] is True
    for (name, b1, k1), (_, b2, k2) in zip(model.named_buffers(), again.named_buffers()):
        assert np.array_equal(b1[k1], b2[k2]), name
    model.eval(), again.eval()
    for a, b in zip(model.forward(x), again.forward(x)):
        assert np.array_equal(a, b)


def test_ssd_lite_overfits_four_images():
    from minidet.optim import SGD

    rng = np.random.default_rng(0)
    model = ssd_lite(56, 0.125, C=2, seed=0)
    images = rng.uniform(0, 1, (4, 3, 56, 56)).astype(np.float32)
    truths = [np.array([[0.1, 0.1, 0.4, 0.45]]), np.array([[0.5, 0.2, 0.9, 0.7]]),
              np.array([[0.2, 0.5, 0.5, 0.95], [0.6, 0.6, 0.8, 0.8]]), np.array([[0.3, 0.3, 0.7, 0.7]])]
    labels = [np.array([0]), np.array([1]), np.array([1, 0]), np.array([0])]
    for img, t in zip(images, truths):   # bright rectangles where the objects are
        for x1, y1, x2, y2 in t:
            img[:, int(y1 * 56):int(y2 * 56), int(x1 * 56):int(x2 * 56)] = 1.0
    targets = [match(t, lab, model.priors) for t, lab in zip(truths, labels)]
    loc_t = np.stack([t[0] for t in targets]).astype(np.float32)
    conf_t = np.stack([t[1] for t in targets])
    loss, opt = MultiboxLoss(), SGD(model, lr=3e-3, momentum=0.9, weight_decay=0)
    first = None
    for _ in range(80):
        value = loss.forward(*model.forward(images), loc_t, conf_t)
        first = value if first is None else first
        model.backward(*loss.backward())
        opt.step()
    assert value < 0.1 * first, (first, value)
    model.eval()
    dets = model.decode(model.forward(images), score_threshold=0.3)
    for (boxes, scores, labs), t, lab in zip(dets, truths, labels):
        assert sorted(labs.tolist()) == sorted(lab.tolist())
        assert box_iou(boxes, t).max(axis=0).min() > 0.7
