"""Faster R-CNN's model and loss: a tiny one gradient-checked through its differentiable parts
(trunk, RPN head, RoI pooling, head), the training loss against its two parts, and four
images overfitted."""
import numpy as np
import pytest

from minidet.eval import evaluate
from minidet.gradcheck import gradcheck
from minidet.layers import Conv2d, Flatten, LeakyReLU, Linear, RoIPool2d, Sequential
from minidet.layers.base import Layer
from minidet.models import FasterRCNN, faster_rcnn
from minidet.optim import SGD
from minidet.rcnn import anchor_grid, rpn_head
from minidet.rcnn.task import MAX_OBJECTS, FasterRCNNLoss, FasterTargets


class BothStages(Layer):
    """The one-input layer contract gradcheck takes: the RPN output and the head's output on
    fixed RoIs, flattened and concatenated; backward splits the gradient between them."""

    def __init__(self, model, rois):
        super().__init__()
        self.model, self.rois, self.layers = model, rois, [model]

    def forward(self, x):
        rpn = self.model.forward(x)
        head = self.model.classify(self.rois)
        self._shapes = (rpn.shape, head.shape)
        return np.concatenate([rpn.ravel(), head.ravel()])

    def backward(self, dy):
        (rpn, head) = self._shapes
        k = int(np.prod(rpn))
        return self.model.backward(dy[:k].reshape(rpn), dy[k:].reshape(head))

    def named_parameters(self, prefix=""):
        return self.model.named_parameters(prefix)



class OnRoIs(Layer):
    """The one-input contract gradcheck takes: images in, the model's second stage on fixed
    `rois` out (its forward runs first for the features or the pixels; its proposals unused)."""

    def __init__(self, model, rois):
        super().__init__()
        self.model, self.rois, self.layers = model, rois, [model]

    def forward(self, images):
        self.model.forward(images)
        return self.model.classify(self.rois)

    def backward(self, dy):
        return self.model.backward(dy)

    def named_parameters(self, prefix=""):
        return self.model.named_parameters(prefix)

def tiny_model(C=2, A=2):
    rng = np.random.default_rng(0)
    trunk = Sequential(Conv2d(3, 3, 3, padding=1, rng=rng), LeakyReLU(0.1))
    head = Sequential(Flatten(), Linear(3 * 2 * 2, 5 * (C + 1), rng=rng))
    arch = {"name": "tiny", "kwargs": {}}
    model = FasterRCNN(trunk, rpn_head(3, A, mid_channels=2, rng=rng), RoIPool2d(2, 1.0), head,
                       anchor_grid(8, 8, 1.0, scales=(2, 4), ratios=(1.0,)), A, C, 8, arch)
    return model.train()


def test_tiny_faster_rcnn_gradcheck_through_both_stages():
    model = tiny_model()
    model.trunk.layers[0].need_input_grad = True
    model.rpn.layers[2].params["W"] *= 10  # the head starts near zero: make its inputs' gradients count
    # Two images; RoIs overlapping, one partly outside the map, one on the second image.
    rois = np.array([[0, 0, 0, 5, 4], [1, 2, 1, 7, 7], [1, -3, 4, 3, 12], [0, 1, 1, 6, 6]], dtype=float)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    # A step of 1e-4: at 1e-5 the differences' rounding alone reached 1.3e-7 on a small dx
    # entry (how much depends on the first convolution's summation order); at 1e-3 the
    # step crosses a kink of the leaky ReLU or RoI pooling's max.
    result = gradcheck(BothStages(model, rois), x, eps=1e-4)
    assert result.passed(1e-7), str(result)
    assert set(result.errors) == {"dx", "trunk.0.W", "trunk.0.b", "rpn.0.W", "rpn.0.b", "rpn.2.W", "rpn.2.b",
                                  "head.1.W", "head.1.b"}


def test_model_shapes_modes_and_names():
    model = faster_rcnn(input_size=56, width=0.0625, C=3)
    x = np.random.default_rng(0).random((2, 3, 56, 56), dtype=np.float32)
    rpn = model.train().forward(x)
    assert rpn.shape == (2, 5 * 9, 7, 7) and model.anchors.shape == (7 * 7 * 9, 4)
    proposals, out = model.eval().forward(x)
    assert len(proposals) == 2 and out.shape == (sum(len(p) for p in proposals), 20)
    detections = model.decode((proposals, out), score_threshold=0.0)
    assert len(detections) == 2
    for boxes, scores, labels in detections:
        assert boxes.shape == (len(scores), 4) and np.all((boxes >= 0) & (boxes <= 1)) and np.all(labels < 3)
    names = [n for n, *_ in model.named_parameters()]
    assert names[0] == "trunk.0.W" and "rpn.0.W" in names and names[-1] == "head.3.b"
    with pytest.raises(ValueError, match="input_size must be a multiple of 8"):
        faster_rcnn(input_size=60)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 56, 56\)"):
        model.forward(np.zeros((1, 3, 48, 48), np.float32))


def test_targets_pad_and_refuse_too_many_objects():
    t = FasterTargets()([[0.1, 0.2, 0.3, 0.4]], [7])
    assert t.shape == (MAX_OBJECTS, 5) and t.dtype == np.float32
    assert t[0].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 7]) and np.all(t[1:, 4] == -1)
    with pytest.raises(ValueError, match="FasterTargets"):
        FasterTargets()(np.zeros((MAX_OBJECTS + 1, 4)), np.zeros(MAX_OBJECTS + 1))


def test_training_loss_is_the_sum_of_its_two_losses():
    model = faster_rcnn(input_size=56, width=0.0625, C=3).train()
    x = np.random.default_rng(0).random((2, 3, 56, 56), dtype=np.float32)
    targets = np.stack([FasterTargets()([[0.1, 0.1, 0.5, 0.6]], [1]),
                        FasterTargets()([[0.3, 0.2, 0.9, 0.7], [0.0, 0.5, 0.3, 0.9]], [0, 2])])
    loss = FasterRCNNLoss(model, seed=0)
    value = loss.forward(model.forward(x), targets)
    assert value == pytest.approx(sum(loss.components.values()), rel=1e-12)
    assert set(loss.components) == {"rpn_cls", "rpn_box", "cls", "box"}
    drpn, dhead = loss.backward()
    assert drpn.shape == (2, 45, 7, 7) and drpn.dtype == np.float32
    assert dhead.shape[1] == 20 and dhead.dtype == np.float32
    # The same seed draws the same anchors and RoIs: the value repeats to the bit.
    again = FasterRCNNLoss(model, seed=0).forward(model.forward(x), targets)
    assert again == value
    model.backward(drpn, dhead)
    assert all(np.isfinite(g[k]).all() for _, _, g, k in model.named_parameters())


def test_overfits_four_images(tiny_voc):
    from minidet.data import BatchLoader, VOCDataset

    dataset = VOCDataset(tiny_voc, "train")
    model = faster_rcnn(input_size=56, width=0.125, C=len(dataset.classes), seed=0)
    loss, targets = FasterRCNNLoss(model, seed=0), FasterTargets()
    opt = SGD(model, lr=0.01)
    with BatchLoader(dataset, 4, 56, target_fn=targets, workers=1) as loader:
        batch = next(iter(loader))
    first = None
    for step in range(300):
        model.train()
        value = loss.forward(model.forward(batch.images), batch.targets)
        first = value if first is None else first
        model.backward(*loss.backward())
        opt.step()
    model.eval()
    detections = model.decode(model.forward(batch.images), score_threshold=0.01)
    truths = list(zip(batch.boxes, batch.labels, batch.difficult))
    result = evaluate(detections, truths, num_classes=model.C)
    assert value < 0.2 * first, (first, value)
    assert result["mAP"] >= 0.9, (result, first, value)


def test_fast_rcnn_on_selective_search_gradcheck_and_proposal_cache():
    from minidet.models import SelectiveSearchFastRCNN
    from minidet.models.faster_rcnn import rois_of

    rng = np.random.default_rng(0)
    trunk = Sequential(Conv2d(3, 3, 3, padding=1, rng=rng), LeakyReLU(0.1))
    head = Sequential(Flatten(), Linear(3 * 2 * 2, 15, rng=rng))
    model = SelectiveSearchFastRCNN(trunk, RoIPool2d(2, 1.0), head, 2, 8, {"name": "tiny", "kwargs": {}}).train()
    model.trunk.layers[0].need_input_grad = True
    rois = np.array([[0, 0, 0, 5, 4], [1, 2, 1, 7, 7], [1, -3, 4, 3, 12]], dtype=float)


    x = np.random.default_rng(1).random((2, 3, 8, 8))
    result = gradcheck(OnRoIs(model, rois), x)
    assert result.passed(1e-7), str(result)
    assert set(result.errors) == {"dx", "trunk.0.W", "trunk.0.b", "head.1.W", "head.1.b"}
    # Proposals: one array per image, computed once per distinct image.
    first = model.forward(x)
    assert len(first) == 2 and all(p.ndim == 2 and p.shape[1] == 4 for p in first)
    assert model.forward(x)[0] is first[0] and len(model.proposals) == 2
    assert len(rois_of(first)) == sum(len(p) for p in first)
    model.backward(None)   # no RoI sampled: every gradient is zero
    assert all(not g[k].any() for _, _, g, k in model.named_parameters())


def test_fast_rcnn_loss_is_its_second_stage():
    from minidet.models import fast_rcnn_ss
    from minidet.rcnn.task import FastRCNNLoss

    model = fast_rcnn_ss(input_size=56, width=0.0625, C=3).train()
    x = np.random.default_rng(0).random((2, 3, 56, 56), dtype=np.float32)
    targets = np.stack([FasterTargets()([[0.1, 0.1, 0.5, 0.6]], [1]), FasterTargets()([[0.3, 0.2, 0.9, 0.7]], [2])])
    loss = FastRCNNLoss(model, seed=0)
    value = loss.forward(model.forward(x), targets)
    assert set(loss.components) == {"cls", "box"} and value == pytest.approx(sum(loss.components.values()))
    dhead = loss.backward()
    assert dhead.shape[1] == 20 and dhead.dtype == np.float32
    model.backward(dhead)
    proposals, out = model.eval().forward(x)
    assert out.shape == (sum(len(p) for p in proposals), 20) and len(model.decode((proposals, out))) == 2


def test_rcnn_classifies_warped_crops_and_gradchecks():
    from minidet.models import crop_rcnn
    from minidet.models.crop_rcnn import CONTEXT, CROP
    from minidet.models.fast_rcnn_ss import ProposalMemo
    from minidet.rcnn import warp_crops
    from minidet.rcnn.task import FastRCNNLoss

    model = crop_rcnn(input_size=64, width=2 / 64, C=2, seed=1).train()
    x = np.random.default_rng(1).random((2, 3, 64, 64))
    proposals = model.forward(x)
    assert len(proposals) == 2
    # About 32 pixels each, so that a 32×32 crop resamples its pixels about one to one: an
    # upsampled crop is smooth, and its near-ties in the max-pools blur the finite differences.
    rois = np.array([[0, 1, 2, 33, 30], [1, 20, 10, 52, 44], [0, 30, 30, 62, 63]], dtype=float)
    out = model.classify(rois)
    pixels = ProposalMemo.pixels(x)
    crops = np.concatenate([warp_crops(pixels[int(r[0])], r[None, 1:], CROP, CONTEXT) for r in rois])
    assert np.array_equal(out, model.classifier.forward(crops.astype(x.dtype)))   # each RoI cut from its own image


    result = gradcheck(OnRoIs(model, rois), x, check_input=False)   # the crops are resampled pixels: no image gradient
    assert result.passed(1e-7), str(result)
    assert set(result.errors) == {f"classifier.{i}.{k}" for i in (0, 3, 6, 10) for k in "Wb"}
    targets = np.stack([FasterTargets()([[0.1, 0.1, 0.5, 0.6]], [1]), FasterTargets()([[0.3, 0.2, 0.9, 0.7]], [0])])
    loss = FastRCNNLoss(model, seed=0)
    model.forward(x.astype(np.float32))
    assert loss.forward(proposals, targets) > 0
    model.backward(loss.backward())
    detections = model.eval().decode(model.forward(x.astype(np.float32)), score_threshold=0.0)
    assert len(detections) == 2 and all(np.all((d[0] >= 0) & (d[0] <= 1)) for d in detections)
