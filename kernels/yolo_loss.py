"""The YOLO v1 loss, forward and backward in one kernel: the CUDA twin of `minidet.loss.YoloLoss`.

Layout and terms are the contract's (see minidet/loss.py): pred (N, S, S, 5B + C), per cell
B boxes `[x, y, sqrt_w, sqrt_h, conf]` then C class scores; target (N, S, S, 5 + C),
`[x, y, w, h, obj]` then a one-hot class vector; row i of the grid is y, column j is x.
The decoded box of a predictor is centre ((j + x)/S, (i + y)/S), size (sqrt_w², sqrt_h²).
In a cell with an object (obj > 0.5), the responsible predictor is the one with the
highest IoU with the truth (lowest index on ties); when every IoU is 0, the one with the
smallest squared error on (x, y, sqrt_w, sqrt_h) against (tx, ty, √tw, √th) (lowest index on
ties). Per cell, everything divided by N, no ½:
    coord = λcoord·Σ (x − tx)² + (y − ty)² + (sqrt_w − √tw)² + (sqrt_h − √th)²   responsible
    obj   = (conf − IoU)², IoU a constant target                               responsible
    noobj = λnoobj·conf²            every other predictor, of empty and object cells alike
    cls   = Σ_c (p_c − p̂_c)²                                                   object cells
An empty cell's target beyond obj is never read (it may hold anything, NaN included).

Kernel. Launch: one work item per grid cell, N·S·S of them, in a 1-D grid-stride loop
(kernels/_launch.py); the responsible-predictor choice is made inside the thread. Reads
the cell's 5B + C predictions and 5 + C targets; writes the cell's 5B + C entries of dpred
(it OVERWRITES every one, zeros included) and its row of parts (N·S·S, 4): the cell's
coord, obj, noobj and cls terms, already divided by N (OVERWRITES). No atomics.

Reduction. The host wrapper sums parts over cells with one deterministic CuPy reduction
(in float64) and copies the four sums back: one small device-to-host transfer per call,
which also synchronises, as reading a loss value must.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._launch import check_device_array, check_float, check_out, launch

COMPONENTS = ("coord", "obj", "noobj", "cls")


def _corners(cx, cy, w, h, half):
    """(x1, y1, x2, y2) of the box of centre (cx, cy) and size (w, h); half = 0.5 in the dtype."""
    return cx - w * half, cy - h * half, cx + w * half, cy + h * half


# Inlined at Numba's IR level: the kernel compiles to PTX with no device function of its own.
corners = cuda.jit(device=True, inline="always")(_corners)


def _yolo_loss_kernel(pred, target, B, C, lambda_coord, lambda_noobj, inv_n, dpred, parts):
    N = pred.shape[0]
    S = pred.shape[1]
    zero = pred.dtype.type(0)
    half = pred.dtype.type(0.5)
    two_inv_n = pred.dtype.type(2) * inv_n
    s_f = pred.dtype.type(S)
    for cell in range(cuda.grid(1), N * S * S, cuda.gridsize(1)):
        j = cell % S
        t = cell // S
        i = t % S
        n = t // S
        j_f = pred.dtype.type(j)
        i_f = pred.dtype.type(i)
        coord = zero
        obj = zero
        noobj = zero
        cls = zero
        resp = -1
        best_iou = zero
        if target[n, i, j, 4] > half:
            tx = target[n, i, j, 0]
            ty = target[n, i, j, 1]
            tw = target[n, i, j, 2]
            th = target[n, i, j, 3]
            tsw = math.sqrt(max(tw, zero))
            tsh = math.sqrt(max(th, zero))
            tcx = (j_f + tx) / s_f
            tcy = (i_f + ty) / s_f
            tx1, ty1, tx2, ty2 = corners(tcx, tcy, tw, th, half)
            # One pass finds both choices: the first highest IoU, the first smallest error.
            by_iou = 0
            best_iou = -pred.dtype.type(1)
            by_err = 0
            best_err = zero
            for b in range(B):
                px = pred[n, i, j, 5 * b]
                py = pred[n, i, j, 5 * b + 1]
                psw = pred[n, i, j, 5 * b + 2]
                psh = pred[n, i, j, 5 * b + 3]
                pw = psw * psw
                ph = psh * psh
                pcx = (j_f + px) / s_f
                pcy = (i_f + py) / s_f
                # IoU of corner boxes, 0 when the union is empty (minidet.boxes.elementwise_iou).
                px1, py1, px2, py2 = corners(pcx, pcy, pw, ph, half)
                inter = max(min(px2, tx2) - max(px1, tx1), zero) * max(min(py2, ty2) - max(py1, ty1), zero)
                union = (max(px2 - px1, zero) * max(py2 - py1, zero)
                         + max(tx2 - tx1, zero) * max(ty2 - ty1, zero) - inter)
                iou = inter / union if union > zero else zero
                ex = px - tx
                ey = py - ty
                ew = psw - tsw
                eh = psh - tsh
                err = ex * ex + ey * ey + ew * ew + eh * eh  # `** 2` would call a float64 pow
                if iou > best_iou:
                    best_iou = iou
                    by_iou = b
                if b == 0 or err < best_err:
                    best_err = err
                    by_err = b
            # IoU ≥ 0, so when the best is not > 0 every IoU is 0, and so is the target.
            resp = by_iou if best_iou > zero else by_err
            if not best_iou > zero:
                best_iou = zero
            for c in range(C):
                d = pred[n, i, j, 5 * B + c] - target[n, i, j, 5 + c]
                cls += d * d
                dpred[n, i, j, 5 * B + c] = two_inv_n * d
        else:
            for c in range(C):
                dpred[n, i, j, 5 * B + c] = zero
        for b in range(B):
            conf = pred[n, i, j, 5 * b + 4]
            if b == resp:
                for q in range(4):
                    d = pred[n, i, j, 5 * b + q] - (target[n, i, j, q] if q < 2 else
                                                     math.sqrt(max(target[n, i, j, q], zero)))
                    coord += d * d
                    dpred[n, i, j, 5 * b + q] = two_inv_n * lambda_coord * d
                d = conf - best_iou
                obj += d * d
                dpred[n, i, j, 5 * b + 4] = two_inv_n * d
            else:
                for q in range(4):
                    dpred[n, i, j, 5 * b + q] = zero
                noobj += conf * conf
                dpred[n, i, j, 5 * b + 4] = two_inv_n * lambda_noobj * conf
        parts[cell, 0] = lambda_coord * coord * inv_n
        parts[cell, 1] = obj * inv_n
        parts[cell, 2] = lambda_noobj * noobj * inv_n
        parts[cell, 3] = cls * inv_n


yolo_loss_kernel = cuda.jit(_yolo_loss_kernel)


def check_shapes(pred, target, S, B, C, where):
    """ValueError naming `where` unless pred is (N, S, S, 5B + C) and target (N, S, S, 5 + C)
    (the one check, used by minidet.loss.YoloLoss on every device too)."""
    D = 5 * B + C
    if pred.ndim != 4 or tuple(pred.shape[1:]) != (S, S, D):
        raise ValueError(f"{where}: pred must have shape (N, {S}, {S}, {D}) for S={S}, B={B}, C={C}; "
                         f"got {tuple(pred.shape)}")
    want = (pred.shape[0], S, S, 5 + C)
    if target.ndim != 4 or tuple(target.shape) != want:
        raise ValueError(f"{where}: target must have shape {want} to match pred {tuple(pred.shape)}; "
                         f"got {tuple(target.shape)}")


def yolo_loss_parts_gpu(pred, target, S: int, B: int, C: int, lambda_coord: float, lambda_noobj: float,
                        dpred=None, parts=None):
    """Launch the kernel only: returns (dpred (N, S, S, 5B + C), parts (N·S·S, 4)), on the device.

    parts[n·S·S + i·S + j] = (coord, obj, noobj, cls) of cell (n, i, j), each divided by N.
    dpred, parts: optional C-contiguous arrays of pred's dtype to write into.
    """
    where = "yolo_loss_gpu"
    xp = check_device_array(pred, where, "pred")
    check_device_array(target, where, "target")
    check_float(pred, where, "pred")
    check_shapes(pred, target, S, B, C, where)
    pred = xp.ascontiguousarray(pred)
    target = xp.ascontiguousarray(target, dtype=pred.dtype)
    N = pred.shape[0]
    dpred = check_out(dpred, pred.shape, pred.dtype, xp, where, "dpred")
    parts = check_out(parts, (N * S * S, 4), pred.dtype, xp, where, "parts")
    t = pred.dtype.type
    launch(yolo_loss_kernel, N * S * S, pred, target, B, C, t(lambda_coord), t(lambda_noobj),
           t(1.0 / max(N, 1)), dpred, parts)
    return dpred, parts


def yolo_loss_gpu(pred, target, S: int = 7, B: int = 2, C: int = 20, lambda_coord: float = 5.0,
                  lambda_noobj: float = 0.5, dpred=None):
    """(loss, components, dpred) of pred (N, S, S, 5B + C) against target (N, S, S, 5 + C).

    loss: a Python float, the sum of `components` ({"coord", "obj", "noobj", "cls"}, floats,
    each divided by N); dpred: dL/dpred on the device, pred's shape and dtype.
    """
    dpred, parts = yolo_loss_parts_gpu(pred, target, S, B, C, lambda_coord, lambda_noobj, dpred=dpred)
    xp = check_device_array(parts, "yolo_loss_gpu", "parts")
    sums = parts.sum(axis=0, dtype=xp.float64)
    sums = sums.get() if xp is not np else sums
    components = {name: float(v) for name, v in zip(COMPONENTS, sums)}
    return float(sum(components.values())), components, dpred
