"""The course's checkers (minidet.course.checks) pass a right answer, fail each usual
slip, and say TODO for a function still raising NotImplementedError."""
import numpy as np
import pytest

from minidet.boxes import box_iou, nms
from minidet.course import checks
from minidet.layers import conv2d_backward, conv2d_forward


def conv_backward_right(dy, x, W, b, stride, padding):
    _, cache = conv2d_forward(x, W, b, stride, padding)
    return conv2d_backward(dy, cache)


def conv_backward_first_image_only(dy, x, W, b, stride, padding):
    dx, dW, db = conv_backward_right(dy[:1], x[:1], W, b, stride, padding)
    return np.concatenate([dx, np.zeros_like(x[1:])]), dW, db


def _xent_of(p, labels):
    """Mean cross-entropy and its gradient for softmax probabilities p (N, K)."""
    n = len(labels)
    d = p.copy()
    d[np.arange(n), labels] -= 1
    return -np.log(p[np.arange(n), labels]).sum() / n, d / n


def xent_right(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    return _xent_of(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), labels)


def xent_unstable(logits, labels):
    with np.errstate(over="ignore", invalid="ignore"):
        return _xent_of(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), labels)


def xent_no_mean(logits, labels):
    loss, d = xent_right(logits, labels)
    return loss, d * len(labels)


def iou_plus_one(a, b):  # the VOC-devkit "+1 pixel" widths on normalized boxes
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)
    area = lambda t: (t[:, 2] - t[:, 0] + 1) * (t[:, 3] - t[:, 1] + 1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def iou_no_clip(a, b):  # forgets that disjoint boxes have no intersection
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1) * (y2 - y1)
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def nms_greater_equal(boxes, scores, t):
    order, keep = np.argsort(-scores, kind="stable"), []
    for i in order:
        if all(box_iou(boxes[i:i + 1], boxes[k:k + 1])[0, 0] < t for k in keep):
            keep.append(i)
    return keep


def nms_unsorted(boxes, scores, t):
    return sorted(nms(boxes, scores, t).tolist())


def noobj_right(pred, responsible, B, lam):
    conf = pred[..., 4:5 * B:5]
    others = np.arange(B) != responsible[..., None]
    return lam * float((conf ** 2 * others).sum()) / len(pred)


def noobj_empty_cells_only(pred, responsible, B, lam):
    conf = pred[..., 4:5 * B:5]
    return lam * float((conf ** 2 * (responsible[..., None] < 0)).sum()) / len(pred)


def todo(*args):
    raise NotImplementedError


@pytest.mark.parametrize("checker, right, wrongs", [
    (checks.conv_backward, conv_backward_right, [conv_backward_first_image_only]),
    (checks.softmax_cross_entropy, xent_right, [xent_unstable, xent_no_mean]),
    (checks.iou, lambda a, b: box_iou(a, b), [iou_plus_one, iou_no_clip]),
    (checks.nms, nms, [nms_greater_equal, nms_unsorted]),
    (checks.noobj_term, noobj_right, [noobj_empty_cells_only]),
], ids=["conv_backward", "softmax_cross_entropy", "iou", "nms", "noobj_term"])
def test_checker_passes_the_right_answer_and_fails_the_slips(checker, right, wrongs):
    verdict = checker(right)
    assert verdict.passed is True and bool(verdict), str(verdict)
    assert str(verdict).startswith("PASS")
    for wrong in wrongs:
        verdict = checker(wrong)
        assert verdict.passed is False and not verdict, f"{wrong.__name__}: {verdict}"
        assert str(verdict).startswith("FAIL")
    verdict = checker(todo)
    assert verdict.passed is None and str(verdict).startswith("TODO")


def test_value_check():
    assert checks.value("n", 1275, 1275)
    assert not checks.value("n", 1274, 1275)
    assert not checks.value("shape", [1, 2], [1, 2, 3])
