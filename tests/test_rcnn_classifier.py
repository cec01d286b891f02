"""R-CNN's crop classifier: shapes, the output layout, and learning four hand-made images."""
from types import SimpleNamespace

import numpy as np
import pytest

from minidet.boxes import box_iou
from minidet.optim import SGD
from minidet.proposals import selective_search
from minidet.rcnn import MultiTaskLoss, split_outputs
from minidet.rcnn.classifier import crop_classifier, detect_image, train_step, training_batch

RED, BLUE = (220, 30, 30), (35, 70, 230)


def scene(seed):
    """A 48×48 grey image with one red and one blue square; labels 0 (red) and 1 (blue)."""
    rng = np.random.default_rng(seed)
    img = np.full((48, 48, 3), 128, np.uint8)
    boxes, labels = [], []
    for colour, label, x in ((RED, 0, rng.integers(2, 10)), (BLUE, 1, rng.integers(26, 32))):
        y, side = rng.integers(2, 30), rng.integers(10, 16)
        img[y:y + side, x:x + side] = colour
        boxes.append([x / 48, y / 48, (x + side) / 48, (y + side) / 48])
        labels.append(label)
    return SimpleNamespace(image=img, boxes=np.array(boxes), labels=np.array(labels))


def test_output_layout_and_shapes():
    model = crop_classifier(3, size=16, width=4)
    out = model.forward(np.zeros((2, 3, 16, 16), np.float32))
    logits, deltas = split_outputs(out, 3)
    assert out.shape == (2, 20) and logits.shape == (2, 4) and deltas.shape == (2, 16)
    with pytest.raises(ValueError, match=r"expected output \(N, 15\) for 2 classes"):
        split_outputs(out, 2)
    with pytest.raises(ValueError, match="multiple of 8"):
        crop_classifier(3, size=20)


def test_training_batch_samples_each_image():
    samples = [scene(0), scene(1)]
    props = [selective_search(s.image) for s in samples]
    b = training_batch(samples, props, np.random.default_rng(0), rois_per_image=16, size=16)
    assert b.crops.shape[1:] == (3, 16, 16) and len(b.crops) == len(b.labels) == len(b.targets) <= 32
    assert set(b.labels.tolist()) == {0, 1, 2} and (b.crops >= 0).all() and (b.crops <= 1).all()


def test_learns_four_images_and_finds_their_objects():
    samples = [scene(i) for i in range(4)]
    props = [selective_search(s.image) for s in samples]
    rng = np.random.default_rng(0)
    model = crop_classifier(2, size=16, width=8, rng=np.random.default_rng(1))
    loss, opt = MultiTaskLoss(), SGD(model, lr=0.05)
    values = [train_step(model, loss, opt, training_batch(samples, props, rng, rois_per_image=24, size=16,
                                                           fg_fraction=0.5), 2) for _ in range(80)]
    assert np.mean(values[-10:]) < 0.3 * np.mean(values[:10]), (values[:10], values[-10:])
    for s, p in zip(samples, props):
        det = detect_image(model, s.image, p, 2, size=16)
        gt = s.boxes * 48
        for k, label in enumerate(s.labels):
            mine = det.labels == label
            assert mine.any(), f"class {label} not found"
            best = int(np.argmax(det.scores * mine))  # the top detection of this class
            assert box_iou(det.boxes[best:best + 1], gt[k:k + 1])[0, 0] >= 0.5
