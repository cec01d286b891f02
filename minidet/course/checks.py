"""Implement, then check: checkers for the pieces the course asks a reader to write.

Each checker takes the reader's function, runs it on cases chosen to catch the usual
slips (a batch > 1, stride 2 with padding, disjoint and touching boxes, ties), compares
it with the library or with centred finite differences in float64, and returns a
`Check`: printing it says PASS, FAIL (with the worst case) or TODO (the function still
raises NotImplementedError). A checker never raises for a wrong answer, so a notebook
with an unfinished exercise still runs to the end; `assert check` fails on anything but PASS.

Signatures expected of the reader's functions (NumPy, float64):
    conv_backward(fn):   fn(dy, x, W, b, stride, padding) -> (dx, dW, db); NCHW, W (F, C, k, k)
    softmax_cross_entropy(fn): fn(logits (N, K), labels (N,)) -> (loss, dlogits), loss summed / N
    iou(fn):             fn(a (N, 4), b (M, 4)) -> (N, M), corner boxes [x1, y1, x2, y2]
    nms(fn):             fn(boxes (K, 4), scores (K,), iou_threshold) -> kept indices by descending score
    noobj_term(fn):      fn(pred (N, S, S, 5B + C), responsible (N, S, S), B, lambda_noobj) -> float
                         (responsible as `minidet.loss.assign` returns it: −1 in empty cells)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou
from ..boxes import nms as library_nms
from ..gradcheck import numerical_gradient, worst
from ..layers import conv2d_forward_naive
from ..loss import YoloLoss, assign

TOLERANCE = 1e-7  # relative error against centred differences in float64, as minidet.gradcheck


@dataclass
class Check:
    """The verdict on one function: passed is True, False, or None (not written yet)."""

    name: str
    passed: bool | None
    detail: str

    def __bool__(self) -> bool:
        return self.passed is True

    def __str__(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "TODO"}[self.passed]
        return f"{verdict}  {self.name}: {self.detail}"

    __repr__ = __str__


def _run(name, body):
    """Call body() -> Check; turn NotImplementedError into TODO and any other error into FAIL."""
    try:
        return body()
    except NotImplementedError:
        return Check(name, None, "not written yet (it raises NotImplementedError)")
    except Exception as e:  # the reader's code may fail in any way: report it, don't stop the notebook
        return Check(name, False, f"raised {type(e).__name__}: {e}")


def _shape_error(name, what, got, expected):
    return Check(name, False, f"{what} has shape {tuple(np.shape(got))}, expected {tuple(expected)}")


# -- gradients ------------------------------------------------------------------------------

CONV_CASES = (  # (x shape, F, k, stride, padding)
    ((2, 3, 5, 6), 4, 3, 1, 0),
    ((2, 2, 7, 5), 3, 3, 2, 1),
    ((1, 2, 4, 4), 2, 1, 1, 0),
)


def conv_backward(fn) -> Check:
    """Check fn(dy, x, W, b, stride, padding) -> (dx, dW, db) against finite differences of
    `conv2d_forward_naive` on every entry, for the cases of CONV_CASES."""
    name = "conv backward"

    def body():
        rng = np.random.default_rng(0)
        worst_err, where = 0.0, ""
        for shape, F, k, s, p in CONV_CASES:
            x = rng.standard_normal(shape)
            W = rng.standard_normal((F, shape[1], k, k))
            b = rng.standard_normal(F)
            y, _ = conv2d_forward_naive(x, W, b, stride=s, padding=p)
            dy = rng.standard_normal(y.shape)
            got = fn(dy, x.copy(), W.copy(), b.copy(), s, p)
            for label, array, answer in zip(("dx", "dW", "db"), (x, W, b), got):
                if np.shape(answer) != array.shape:
                    return _shape_error(name, label, answer, array.shape)
                numeric = numerical_gradient(lambda: conv2d_forward_naive(x, W, b, stride=s, padding=p)[0],
                                             array, dy=dy)
                err, idx = worst(answer, numeric)
                if err > worst_err:
                    worst_err, where = err, f"{label}{tuple(int(i) for i in idx)} (x {shape}, k {k}, stride {s}, padding {p})"
        ok = worst_err < TOLERANCE
        return Check(name, ok, f"worst relative error {worst_err:.1e}" + (f" at {where}" if where else "")
                     + f" over {len(CONV_CASES)} cases (tolerance {TOLERANCE:g})")

    return _run(name, body)


def softmax_cross_entropy(fn) -> Check:
    """Check fn(logits, labels) -> (loss, dlogits): the loss against a direct computation,
    the gradient against finite differences of the reader's own loss and of the true one."""
    name = "softmax cross-entropy"

    def reference(z, labels):
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(labels)), labels].sum() / len(labels)

    def body():
        rng = np.random.default_rng(1)
        logits = rng.standard_normal((5, 4)) * 3
        logits[0] += 800.0  # a large logit: exp() overflows unless the maximum is subtracted
        labels = np.array([0, 3, 1, 1, 2])
        loss, dlogits = fn(logits.copy(), labels)
        if np.shape(dlogits) != logits.shape:
            return _shape_error(name, "dlogits", dlogits, logits.shape)
        expected = reference(logits, labels)
        if not np.isfinite(loss) or abs(loss - expected) > 1e-9 * max(1.0, abs(expected)):
            return Check(name, False, f"loss {loss!r}, expected {expected!r}")
        numeric = numerical_gradient(lambda: reference(logits, labels), logits)
        err, idx = worst(dlogits, numeric)
        return Check(name, err < TOLERANCE, f"loss right; dlogits worst relative error {err:.1e} at "
                                            f"{tuple(int(i) for i in idx)} (tolerance {TOLERANCE:g})")

    return _run(name, body)


def layer(layer_obj, x) -> Check:
    """Gradient-check any layer following the contract (minidet.gradcheck.gradcheck)."""
    from ..gradcheck import gradcheck

    name = f"{type(layer_obj).__name__} backward"
    return _run(name, lambda: (lambda r: Check(name, r.passed(TOLERANCE), str(r)))(gradcheck(layer_obj, x)))


# -- boxes ------------------------------------------------------------------------------------

def _box_cases(rng):
    xs, ys = np.sort(rng.uniform(0, 1, (7, 2)), axis=1), np.sort(rng.uniform(0, 1, (7, 2)), axis=1)
    a = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)
    special = np.array([[0.1, 0.1, 0.3, 0.3],     # the same box as the next one
                        [0.1, 0.1, 0.3, 0.3],
                        [0.3, 0.1, 0.5, 0.3],     # touching the first along an edge: IoU 0
                        [0.6, 0.6, 0.9, 0.9],     # disjoint from the first
                        [0.15, 0.15, 0.25, 0.25]])  # inside the first
    return np.concatenate([special, a])


def iou(fn) -> Check:
    """Check fn(a, b) -> (N, M) against `minidet.boxes.box_iou`, with identical, touching,
    disjoint and nested boxes."""
    name = "IoU"

    def body():
        boxes = _box_cases(np.random.default_rng(2))
        got = np.asarray(fn(boxes[:6].copy(), boxes.copy()), dtype=np.float64)
        expected = box_iou(boxes[:6], boxes)
        if got.shape != expected.shape:
            return _shape_error(name, "the IoU matrix", got, expected.shape)
        err = np.abs(got - expected)
        i, j = np.unravel_index(int(np.argmax(err)), err.shape)
        ok = bool(err.max() < 1e-12)
        return Check(name, ok, f"{got.size} pairs" + ("" if ok else f"; worst pair ({i}, {j}): {got[i, j]:.6f}, "
                                                                   f"expected {expected[i, j]:.6f}"))

    return _run(name, body)


def nms(fn) -> Check:
    """Check fn(boxes, scores, iou_threshold) -> kept indices against `minidet.boxes.nms`
    (same indices, same order), over random clusters of boxes and three thresholds."""
    name = "NMS"

    def body():
        # An IoU exactly at the threshold (0.125 / 0.25 = 0.5): kept, since only "greater" suppresses.
        edge = (np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.25], [0.6, 0.6, 0.9, 0.9]]), np.array([0.9, 0.8, 0.7]))
        got = [int(i) for i in np.asarray(fn(edge[0].copy(), edge[1].copy(), 0.5)).ravel()]
        if got != [0, 1, 2]:
            return Check(name, False, f"two boxes with IoU exactly 0.5 at threshold 0.5: kept {got}, expected "
                                      f"[0, 1, 2] (a box is dropped only when its IoU is GREATER than the threshold)")
        rng = np.random.default_rng(3)
        for trial in range(6):
            centres = rng.uniform(0.2, 0.8, (3, 2))
            c = centres[rng.integers(0, 3, 12)] + rng.normal(0, 0.03, (12, 2))
            half = rng.uniform(0.05, 0.15, (12, 2))
            boxes = np.concatenate([c - half, c + half], axis=1)
            scores = rng.uniform(0, 1, 12)
            if trial == 0:
                scores[3] = scores[7]  # a tie: the earlier box comes first
            for threshold in (0.3, 0.5, 0.7):
                got = [int(i) for i in np.asarray(fn(boxes.copy(), scores.copy(), threshold)).ravel()]
                expected = library_nms(boxes, scores, threshold).tolist()
                if got != expected:
                    return Check(name, False, f"case {trial}, threshold {threshold}: kept {got}, expected {expected}")
        return Check(name, True, "19 cases (an IoU exactly at the threshold; 6 sets of 12 boxes × thresholds 0.3, 0.5, 0.7), same indices in the same order")

    return _run(name, body)


# -- the YOLO loss ------------------------------------------------------------------------

def noobj_term(fn) -> Check:
    """Check fn(pred, responsible, B, lambda_noobj) -> float against the `noobj` part of
    `minidet.loss.YoloLoss` (λnoobj · Σ conf² over the predictors that are not responsible,
    divided by N), on a random prediction and target with S=3, B=2, C=4, N=2."""
    name = "noobj term"

    def body():
        rng = np.random.default_rng(4)
        S, B, C = 3, 2, 4
        pred = rng.uniform(0.05, 0.95, (2, S, S, 5 * B + C))
        target = np.zeros((2, S, S, 5 + C))
        for n, i, j in ((0, 0, 1), (0, 2, 2), (1, 1, 1)):
            target[n, i, j, :5] = (*rng.uniform(0.1, 0.9, 2), *rng.uniform(0.1, 0.6, 2), 1.0)
            target[n, i, j, 5 + rng.integers(C)] = 1.0
        loss = YoloLoss(S=S, B=B, C=C, lambda_noobj=0.5)
        loss.forward(pred, target)
        responsible, _ = assign(pred, target, B)
        got = float(fn(pred.copy(), responsible.copy(), B, 0.5))
        expected = loss.components["noobj"]
        ok = abs(got - expected) <= 1e-12 * max(1.0, abs(expected))
        return Check(name, ok, f"{got:.6f}" + ("" if ok else f", expected {expected:.6f} (YoloLoss.components['noobj'])"))

    return _run(name, body)


# -- numbers ---------------------------------------------------------------------------------

def value(name: str, got, expected, rtol: float = 1e-9) -> Check:
    """A numeric answer against the value the library computes."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    ok = got.shape == expected.shape and bool(np.allclose(got, expected, rtol=rtol, atol=0))
    return Check(name, ok, f"{got.tolist()}" + ("" if ok else f", expected {expected.tolist()}"))
