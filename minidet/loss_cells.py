"""The YOLO v1 loss cell by cell: the reference that the vectorised path (minidet.loss) and
the fused CUDA kernel (kernels/yolo_loss.py) are tested against.

Plain Python loops over images, rows i (y) and columns j (x), in float64, reading the
module docstring of minidet.loss line by line: the layout, the frames, the responsible
predictor (highest IoU, lowest index on ties; when every IoU is 0, the smallest squared
error on x, y, sqrt_w, sqrt_h), every term, and the IoU held as a constant target. Slow by
design: `YoloLoss(path="reference")` runs it so each path can be compared with it.
"""
from __future__ import annotations

import math

import numpy as np


def _iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0) + max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0) - inter
    return inter / union if union > 0 else 0.0


def _corners(cx, cy, w, h):
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def yolo_loss_reference(pred, target, S, B, C, lambda_coord=5.0, lambda_noobj=0.5):
    """The contract's YOLO v1 loss, cell by cell in float64: the oracle of the other paths.

    Returns (loss, components, dpred (N, S, S, 5B + C), parts (N·S·S, 4), responsible (N, S, S)),
    parts holding each cell's (coord, obj, noobj, cls), divided by N; responsible −1 in empty cells.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    N = pred.shape[0]
    dpred = np.zeros_like(pred)
    parts = np.zeros((N * S * S, 4))
    responsible = np.full((N, S, S), -1)
    for n in range(N):
        for i in range(S):
            for j in range(S):
                p, t, cell = pred[n, i, j], target[n, i, j], (n * S + i) * S + j
                resp, iou_r = -1, 0.0
                if t[4] > 0.5:
                    tx, ty, tw, th = t[:4]
                    root = (tx, ty, math.sqrt(max(tw, 0.0)), math.sqrt(max(th, 0.0)))
                    truth = _corners((j + tx) / S, (i + ty) / S, tw, th)
                    ious, errs = [], []
                    for b in range(B):
                        x, y, sw, sh = p[5 * b:5 * b + 4]
                        ious.append(_iou(_corners((j + x) / S, (i + y) / S, sw * sw, sh * sh), truth))
                        errs.append(sum((p[5 * b + q] - root[q]) ** 2 for q in range(4)))
                    resp = int(np.argmax(ious)) if max(ious) > 0 else int(np.argmin(errs))
                    iou_r = ious[resp]
                    d = p[5 * B:] - t[5:]
                    parts[cell, 3] = np.sum(d * d) / N
                    dpred[n, i, j, 5 * B:] = 2 * d / N
                    for q in range(4):
                        dq = p[5 * resp + q] - root[q]
                        parts[cell, 0] += lambda_coord * dq * dq / N
                        dpred[n, i, j, 5 * resp + q] = 2 * lambda_coord * dq / N
                    dc = p[5 * resp + 4] - iou_r
                    parts[cell, 1] = dc * dc / N
                    dpred[n, i, j, 5 * resp + 4] = 2 * dc / N
                responsible[n, i, j] = resp
                for b in range(B):
                    if b != resp:
                        conf = p[5 * b + 4]
                        parts[cell, 2] += lambda_noobj * conf * conf / N
                        dpred[n, i, j, 5 * b + 4] = 2 * lambda_noobj * conf / N
    sums = parts.sum(axis=0)
    components = dict(zip(("coord", "obj", "noobj", "cls"), (float(v) for v in sums)))
    return float(sums.sum()), components, dpred, parts, responsible
