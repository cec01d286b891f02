"""The RPN head's output layout, and a tiny trunk + RPN learning to propose hand-made objects."""
import numpy as np
import pytest

from minidet.boxes import box_iou
from minidet.layers import Conv2d, LeakyReLU, MaxPool2d, Sequential
from minidet.optim import SGD
from minidet.rcnn import RpnLoss, anchor_grid, propose, rpn_head, rpn_rows, rpn_step, split_rpn_output


def test_head_shapes_and_split():
    head = rpn_head(8, 3, mid_channels=6)
    out = head.forward(np.zeros((2, 8, 4, 5), np.float32))
    logits, deltas = split_rpn_output(out, 3)
    assert out.shape == (2, 15, 4, 5) and logits.shape == (2, 3, 4, 5) and deltas.shape == (2, 12, 4, 5)
    with pytest.raises(ValueError, match=r"expected \(N, 10, h, w\) for 2 anchors"):
        split_rpn_output(out, 2)


def scenes(n, seed=0):
    """n 32×32 grey images, one coloured square each; boxes in pixels."""
    rng = np.random.default_rng(seed)
    images, boxes = np.full((n, 3, 32, 32), 0.5, np.float32), []
    for k in range(n):
        side = int(rng.integers(9, 15))
        x, y = (int(v) for v in rng.integers(1, 32 - side, 2))
        images[k, :, y:y + side, x:x + side] = rng.uniform(0, 1, (3, 1, 1))
        images[k, rng.integers(3), y:y + side, x:x + side] = 1.0  # saturated: unlike the grey
        boxes.append(np.array([[x, y, x + side, y + side]], float))
    return images, boxes


def test_a_tiny_rpn_learns_to_propose_four_objects():
    rng = np.random.default_rng(1)
    trunk = [Conv2d(3, 8, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2),
             Conv2d(8, 16, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2)]  # stride 4: an 8×8 map
    model = Sequential(*trunk, *rpn_head(16, 3, rng=rng).layers)
    model.layers[0].need_input_grad = False
    anchors = anchor_grid(8, 8, 4, scales=(8, 12, 16), ratios=(1.0,))
    images, boxes = scenes(4)
    loss, opt = RpnLoss(), SGD(model, lr=0.05)
    values = [rpn_step(model, loss, opt, images, boxes, anchors, 3, np.random.default_rng(s), num=64)
              for s in range(250)]
    assert np.mean(values[-10:]) < 0.3 * np.mean(values[:10]), (values[:5], values[-5:])
    model.eval()
    logits, deltas = rpn_rows(*split_rpn_output(model.forward(images), 3))
    # Anchors crossing the border are never trained (ignored), so one may still score high: the
    # object must be among the first five proposals, not necessarily the first.
    for k in range(4):
        top = propose(anchors, logits[k], deltas[k], 32, 32, post_nms_top_n=5)
        assert box_iou(top.boxes, boxes[k]).max() >= 0.5, (k, top.boxes, boxes[k])
