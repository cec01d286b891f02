"""The YOLO v1 loss (Redmon et al. 2016, equation 3) with its backward pass written out.

Layout.
    pred   (N, S, S, 5B + C): per cell, B boxes of `[x, y, sqrt_w, sqrt_h, conf]`, then C
           class scores (the paper's figure: 5B values, then C values).
    target (N, S, S, 5 + C): per cell `[x, y, w, h, obj]`, then a one-hot class vector.
           obj is 1 in the cell holding an object's centre, 0 elsewhere, and the rest of an
           empty cell is ignored (read as zeros). `minidet.boxes.encode_targets` builds it.

Coordinate frames. Row index i of the grid is y, column j is x. x, y are the box centre
relative to its cell, in [0, 1]; w, h are relative to the image. The network predicts the
square roots sqrt_w, sqrt_h (as darknet does) and the decoded predicted box is centre
((j + x) / S, (i + y) / S), size (sqrt_w², sqrt_h²). Squaring, rather than taking a square
root of a predicted w, keeps a negative or zero output finite in the value and the gradient.

Responsible predictor. In a cell with an object, the predictor whose decoded box has the
highest IoU with the truth is responsible for it (lowest index on ties). When every IoU is
0 (early in training, boxes often do not overlap at all) it is the one with the smallest
squared error on (x, y, sqrt_w, sqrt_h) against (tx, ty, sqrt(tw), sqrt(th)), as darknet
does; ties again go to the lowest index.

The loss, summed over images, cells and predictors, then divided by the batch size N:
    coord = λcoord · Σ_obj [(x − tx)² + (y − ty)² + (sqrt_w − √tw)² + (sqrt_h − √th)²]
            over responsible predictors;
    obj   = Σ_obj (conf − IoU)² over responsible predictors, where IoU (of the decoded box with
            the truth) is a CONSTANT target: no gradient flows through it into x, y, sqrt_w,
            sqrt_h; the coordinates are trained by the coord term alone;
    noobj = λnoobj · Σ conf² over every other predictor: all predictors of empty cells AND the
            non-responsible predictors of object cells;
    cls   = Σ_obj Σ_c (p_c − p̂_c)² in cells with an object only.
There is no ½ in front: darknet's gradient is that of half this loss. The value returned by
`forward` is exactly the function whose gradient `backward` returns (with the assignment
and the IoU targets held fixed, as they are constants of the step).

Three paths compute it (`YoloLoss(path=...)`), each tested against the others:
- "vectorised": the array code below, with `xp = get_array_module(pred)`, keeping pred's
  dtype (float32 in, float32 gradient out); on either device;
- "fused": the CUDA kernel of kernels/yolo_loss.py (one thread per cell, the same rules,
  the loss parts and dpred in one pass); CuPy preds;
- "reference": minidet/loss_cells.py, cell by cell in float64 on the CPU (slow: for
  checks), its gradient returned in pred's dtype on pred's device.
"auto" (the default) takes "vectorised" on NumPy and `gpu_path` on CuPy.
"""
from __future__ import annotations

import numpy as np

from kernels.yolo_loss import check_shapes, yolo_loss_gpu

from .backend import device_of, get_array_module, to_device, to_numpy
from .boxes import centers_to_corners, elementwise_iou, grid_boxes
from .loss_cells import yolo_loss_reference


def _split(pred, B):
    """(N, S, S, 5B + C) -> boxes (N, S, S, B, 5) and class scores (N, S, S, C) (views)."""
    n, s = pred.shape[0], pred.shape[1]
    return pred[..., :5 * B].reshape(n, s, s, B, 5), pred[..., 5 * B:]


def _target_parts(pred, target):
    """obj mask (N, S, S) bool, and the target cast to pred's dtype with empty cells zeroed.

    Zeroing (rather than multiplying by the mask) keeps whatever an empty cell held (NaN,
    a negative w) out of every sum and square root.
    """
    xp = get_array_module(pred)
    target = xp.asarray(target).astype(pred.dtype, copy=False)
    obj = target[..., 4] > 0.5
    return obj, xp.where(obj[..., None], target, 0)


def _truth(t):
    """(tx, ty, sqrt(tw), sqrt(th)) (N, S, S, 4): what the coordinates of pred are compared with."""
    xp = get_array_module(t)
    return xp.stack([t[..., 0], t[..., 1], xp.sqrt(xp.maximum(t[..., 2], 0)),
                     xp.sqrt(xp.maximum(t[..., 3], 0))], axis=-1)


def assign(pred, target, B=2):
    """The responsible predictor of each cell and its IoU with the truth.

    pred (N, S, S, 5B + C), target (N, S, S, 5 + C) as in the module docstring.
    Returns `responsible` (N, S, S) int64: the index in [0, B) of the responsible predictor
    in cells with an object, −1 in empty cells; and `iou` (N, S, S) of pred's dtype: the IoU
    of that predictor's decoded box with the truth (0 in empty cells), the constant target
    of the obj term.
    """
    xp = get_array_module(pred)
    obj, t = _target_parts(pred, target)
    box, _ = _split(pred, B)
    s = pred.shape[1]
    col = xp.arange(s, dtype=pred.dtype).reshape(1, 1, s)
    row = xp.arange(s, dtype=pred.dtype).reshape(1, s, 1)
    truth = centers_to_corners(xp.stack([(col + t[..., 0]) / s, (row + t[..., 1]) / s, t[..., 2], t[..., 3]], axis=-1))
    boxes = grid_boxes(box, s)
    ious = elementwise_iou(boxes, truth[..., None, :])                      # (N, S, S, B)
    sq_err = xp.sum((box[..., :4] - _truth(t)[..., None, :]) ** 2, axis=-1)     # (N, S, S, B)
    # argmax / argmin return the first extremum, which is the lowest-index tie rule.
    by_iou, by_err = xp.argmax(ious, axis=-1), xp.argmin(sq_err, axis=-1)
    best = xp.where(ious.max(axis=-1) > 0, by_iou, by_err)
    responsible = xp.where(obj, best, -1).astype(xp.int64)
    iou = xp.take_along_axis(ious, best[..., None], axis=-1)[..., 0]
    return responsible, xp.where(obj, iou, 0).astype(pred.dtype)


class YoloLoss:
    """The YOLO v1 loss; see the module docstring for the layout and the terms.

    After `forward`: `components` (dict of floats `coord`, `obj`, `noobj`, `cls`, each
    divided by N, summing to the loss), `responsible` (N, S, S) and `iou` (N, S, S) from
    `assign`.

    path: "auto", "vectorised", "fused" or "reference" (see the module docstring).
    gpu_path: what "auto" takes on a CuPy pred, "fused" (one kernel for the loss and its
    gradient) or "vectorised" (the array code below, as on the CPU).
    """

    PATHS = ("auto", "vectorised", "fused", "reference")
    GPU_PATHS = ("fused", "vectorised")

    def __init__(self, S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5, *, path="auto", gpu_path="fused"):
        if path not in self.PATHS:
            raise ValueError(f"YoloLoss: path must be one of {self.PATHS}, got {path!r}")
        if gpu_path not in self.GPU_PATHS:
            raise ValueError(f"YoloLoss: gpu_path must be one of {self.GPU_PATHS}, got {gpu_path!r}")
        self.path, self.gpu_path = path, gpu_path
        self.S, self.B, self.C = S, B, C
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.components = {}
        self.responsible = self.iou = None
        self._cache = None

    def forward(self, pred, target, assignment=None) -> float:
        """The loss (a float) of pred (N, S, S, 5B + C) against target (N, S, S, 5 + C).

        assignment: optional `(responsible, iou)` as returned by `assign`, to hold the
        responsible predictors and IoU targets fixed (a gradient check needs that: both are
        constants of the step, not functions differentiated). By default they are computed.
        """
        xp = get_array_module(pred)
        check_shapes(pred, target, self.S, self.B, self.C, "YoloLoss")
        if pred.dtype.kind != "f":
            pred = pred.astype(xp.float64)
        path = self._path(xp, assignment)
        if path == "fused":
            return self._forward_gpu(pred, target)
        if path == "reference":
            return self._forward_reference(pred, target)
        obj, t = _target_parts(pred, target)
        responsible, iou = assign(pred, target, self.B) if assignment is None else assignment
        responsible, iou = xp.asarray(responsible), xp.asarray(iou).astype(pred.dtype, copy=False)
        box, cls = _split(pred, self.B)
        n = pred.shape[0]
        # resp[n, i, j, b]: predictor b is responsible for an object in cell (i, j).
        resp = (responsible[..., None] == xp.arange(self.B)) & obj[..., None]
        r = resp.astype(pred.dtype)
        o = obj.astype(pred.dtype)[..., None]
        d_coord = box[..., :4] - _truth(t)[..., None, :]                        # (N, S, S, B, 4)
        d_obj = box[..., 4] - iou[..., None]                                  # (N, S, S, B)
        conf = box[..., 4]
        d_cls = cls - t[..., 5:]
        coord = self.lambda_coord * xp.sum(r[..., None] * d_coord ** 2) / n
        obj_term = xp.sum(r * d_obj ** 2) / n
        noobj = self.lambda_noobj * xp.sum((1 - r) * conf ** 2) / n
        cls_term = xp.sum(o * d_cls ** 2) / n
        self.components = {"coord": float(coord), "obj": float(obj_term),
                           "noobj": float(noobj), "cls": float(cls_term)}
        self.responsible, self.iou = responsible, iou
        self._cache = (pred.shape, pred.dtype, r, o, d_coord, d_obj, conf, d_cls)
        return float(coord + obj_term + noobj + cls_term)

    def _path(self, xp, assignment):
        if assignment is not None:
            if self.path not in ("auto", "vectorised"):
                raise ValueError(f"YoloLoss: an assignment can be held fixed on the vectorised path only, "
                                 f"not path={self.path!r}")
            return "vectorised"
        if self.path == "auto":
            return "vectorised" if xp is np else self.gpu_path
        return self.path

    def _forward_reference(self, pred, target):
        loss, self.components, dpred, _, responsible = yolo_loss_reference(
            to_numpy(pred), to_numpy(target), self.S, self.B, self.C, self.lambda_coord, self.lambda_noobj)
        device = device_of(pred)
        self.responsible, self.iou = to_device(responsible.astype(np.int64), device), None
        self._cache = ("done", to_device(dpred.astype(pred.dtype), device))
        return loss

    def _forward_gpu(self, pred, target):
        # One fused kernel (kernels/yolo_loss.py): loss parts and dpred in a single pass,
        # one device-to-host copy of the four sums.
        target = target.astype(pred.dtype, copy=False)
        loss, self.components, dpred = yolo_loss_gpu(pred, target, self.S, self.B, self.C,
                                                     self.lambda_coord, self.lambda_noobj)
        self.responsible = self.iou = None
        self._cache = ("done", dpred)
        return loss

    def backward(self):
        """dL/dpred, shape and dtype of the pred given to `forward`."""
        if self._cache is None:
            raise RuntimeError("YoloLoss.backward called before YoloLoss.forward")
        if self._cache[0] == "done":  # the fused and reference paths computed dpred in forward
            return self._cache[1]
        shape, dtype, r, o, d_coord, d_obj, conf, d_cls = self._cache
        xp = get_array_module(d_coord)
        n, s = shape[0], shape[1]
        dbox = xp.empty(d_coord.shape[:-1] + (5,), dtype=dtype)
        dbox[..., :4] = (2 * self.lambda_coord / n) * r[..., None] * d_coord
        # The IoU target is a constant: d/dconf of (conf − IoU)² is 2 (conf − IoU) and the
        # coordinates get nothing from the obj term.
        dbox[..., 4] = (2 / n) * (r * d_obj + self.lambda_noobj * (1 - r) * conf)
        dpred = xp.empty(shape, dtype=dtype)
        dpred[..., :5 * self.B] = dbox.reshape(n, s, s, 5 * self.B)
        dpred[..., 5 * self.B:] = (2 / n) * o * d_cls
        return dpred

    __call__ = forward
