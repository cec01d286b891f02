"""Gradient checking by centred finite differences, in float64, over every entry.

For a layer f and a random upstream gradient dy, the scalar L(x, θ) = sum(f(x; θ) * dy)
has ∂L/∂x = f.backward(dy) and ∂L/∂θ = f.grads. Each entry is compared with
(L(v + ε) − L(v − ε)) / 2ε by the relative error |a − b| / max(1e-8, |a| + |b|).
Every entry of the input and of every parameter is checked, not a sample: a wrong
gradient in one corner (a border pixel, a tie, a stride remainder) must not hide.

Use it on any object with the layer contract, your own included:

    >>> from minidet.gradcheck import gradcheck
    >>> result = gradcheck(Conv2d(3, 4, 3, padding=1), x)        # x: (N, C, H, W)
    >>> result.max_rel_error < 1e-7, result.where
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy

DENOMINATOR_FLOOR = 1e-8


@dataclass
class GradcheckResult:
    """The worst relative error over all checked entries, and where it occurred."""

    max_rel_error: float
    where: str
    errors: dict = field(default_factory=dict)  # name -> worst relative error of that array

    def passed(self, tol: float = 1e-7) -> bool:
        return bool(self.max_rel_error < tol)

    def __str__(self):
        parts = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        return f"max relative error {self.max_rel_error:.3e} at {self.where} ({parts})"


def relative_error(analytic, numeric):
    """Elementwise |a − b| / max(1e-8, |a| + |b|), as float64 NumPy."""
    a = np.asarray(to_numpy(analytic), dtype=np.float64)
    b = np.asarray(to_numpy(numeric), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    return np.abs(a - b) / np.maximum(DENOMINATOR_FLOOR, np.abs(a) + np.abs(b))


def worst(analytic, numeric):
    """(max relative error, index of it) over all entries; (0.0, ()) for an empty array."""
    err = relative_error(analytic, numeric)
    if err.size == 0:
        return 0.0, ()
    flat = int(np.argmax(err))
    return float(err.flat[flat]), np.unravel_index(flat, err.shape)


def numerical_gradient(f, x, eps: float = 1e-5, dy=None):
    """Centred differences with respect to every entry of `x`.

    Without `dy`, `f()` returns a scalar and the result is d f / d x. With `dy`, `f()`
    returns an array y and the result is d sum(y·dy) / d x, computed as
    sum((y(x+ε) − y(x−ε))·dy) / 2ε: subtracting the outputs before summing keeps the
    cancellation per element, which makes the estimate ~100× more precise than
    differencing two large sums.
    `x` is perturbed in place (and restored), so `f` must read it: a layer's input or
    one of its `params` arrays. `x` must be float64.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical_gradient: use float64 inputs, got {x.dtype}")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: x is contiguous
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient: x must be contiguous")
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        plus = _snapshot(f(), dy)
        flat_x[i] = old - eps
        minus = _snapshot(f(), dy)
        flat_x[i] = old
        if dy is None:
            flat_g[i] = (plus - minus) / (2.0 * eps)
        else:
            flat_g[i] = np.sum((plus - minus) * dy) / (2.0 * eps)
    return grad


def _snapshot(value, dy):
    """A float64 copy of f's output: it may be a view of the array being perturbed (Flatten)."""
    if dy is None:
        return float(value)
    return np.array(to_numpy(value), dtype=np.float64, copy=True)


def _generators(layer):
    """Every NumPy Generator held by `layer` or the layers inside it (Dropout's `rng`)."""
    found, stack = [], [layer]
    while stack:
        obj = stack.pop()
        found += [v for v in vars(obj).values() if isinstance(v, np.random.Generator)]
        stack += list(getattr(obj, "layers", []))
    return found


@contextlib.contextmanager
def _single_thread():
    """Numba's parallel loops on one thread: the checked arrays are tiny, and thousands of
    parallel launches on them cost more than the work (40× on a busy 2-core machine)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _as_float64_copy(layer):
    """A deep copy of `layer` whose parameters are float64 NumPy arrays."""
    layer = copy.deepcopy(layer)
    for _, params, grads, key in layer.named_parameters():
        params[key] = np.ascontiguousarray(to_numpy(params[key]), dtype=np.float64)
    return layer


def gradcheck(layer, x, seed: int = 0, eps: float = 1e-5, check_input: bool = True) -> GradcheckResult:
    """Check `layer.backward` against centred differences over every input and parameter entry.

    layer: anything with the layer contract (forward, backward, params/grads through
        `named_parameters()`); it is deep-copied and cast to float64, the original untouched.
    x: the input, any shape the layer takes (e.g. (N, C, H, W)); cast to float64.
    Layers that draw random numbers in forward (Dropout) have their generators rewound
    before each evaluation, so every evaluation draws the same mask.
    eps = 1e-5: the layers are piecewise linear, so the centred difference has no truncation
    error away from kinks and a larger step only shrinks rounding error; keep inputs
    (and pre-activations) further than ε·|∂| from a leaky ReLU kink or a pooling tie.
    Returns a GradcheckResult with the worst relative error, where it occurred ("dx[0, 1, 2, 3]",
    "2.W[...]"), and the worst error per array.
    """
    template = _as_float64_copy(layer)
    x = np.ascontiguousarray(to_numpy(x), dtype=np.float64).copy()
    rng = np.random.default_rng(seed)
    generators = _generators(template)
    start = [g.bit_generator.state for g in generators]

    def output():
        # Every evaluation draws the same random numbers (Dropout's mask) as the first.
        for g, state in zip(generators, start):
            g.bit_generator.state = state
        return template.forward(x)

    with _single_thread():
        # Analytic gradients.
        y = output()
        dy = rng.standard_normal(np.shape(y))
        dx = template.backward(dy)
        analytic = {}
        if check_input:
            if dx is None:
                raise ValueError(f"gradcheck: {type(layer).__name__}.backward returned no input gradient "
                                 f"(a model's first layer skips it); pass check_input=False")
            analytic["dx"] = np.array(to_numpy(dx), copy=True)
        for name, _, grads, key in template.named_parameters():
            analytic[name] = np.array(to_numpy(grads[key]), copy=True)
        return _compare(template, x, output, analytic, dy, eps, check_input)


def _compare(template, x, output, analytic, dy, eps, check_input):
    """Numeric gradients of every checked array against `analytic`; the worst error."""
    errors, best, where = {}, -1.0, ""
    targets = []
    if check_input:
        targets.append(("dx", x))
    for name, params, _, key in template.named_parameters():
        targets.append((name, params[key]))
    for name, arr in targets:
        numeric = numerical_gradient(output, arr, eps, dy=dy)
        err, idx = worst(analytic[name], numeric)
        errors[name] = err
        if err > best:
            best, where = err, f"{name}[{', '.join(str(int(i)) for i in idx)}]"
    return GradcheckResult(max_rel_error=max(best, 0.0), where=where, errors=errors)


def standard_cases():
    """(name, layer, input) for every layer type, on shapes that catch the classic bugs:
    batch > 1, non-square odd sizes, stride 2, paddings 0/1/2, kernels 1/3/5, overlapping
    pooling windows; inputs away from leaky ReLU's kink and free of pooling ties."""
    from .layers import (BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Permute, Reshape,
                         RoIPool2d, RoIPool2dFixed, Sequential)

    rng = np.random.default_rng(0)
    own = np.random.default_rng(1)

    def normal(*shape):
        return rng.standard_normal(shape)

    def no_kinks(*shape):
        x = rng.standard_normal(shape)
        return np.where(np.abs(x) < 0.01, 0.05, x)

    def no_ties(*shape):
        return (rng.permutation(int(np.prod(shape))) * 0.01).reshape(shape) - 0.3

    net = Sequential(Conv2d(3, 4, 3, padding=1, rng=rng), LeakyReLU(), MaxPool2d(2), Flatten(),
                     Linear(4 * 3 * 4, 5, rng=rng), LeakyReLU(), Dropout(0.5, seed=0), Linear(5, 3, rng=rng))
    return [
        # 4 input channels or fewer at stride 1: Conv2d runs the direct form (kernels/direct_conv.py)
        ("Conv2d 3×3 s1 p1", Conv2d(3, 4, 3, padding=1, rng=rng), normal(2, 3, 7, 6)),
        ("Conv2d 3×3 s2 p1", Conv2d(3, 2, 3, stride=2, padding=1, rng=rng), normal(2, 3, 9, 7)),
        ("Conv2d Winograd 64ch", Conv2d(64, 2, 3, padding=1, rng=rng), normal(2, 64, 5, 4)),
        ("Conv2d 5×5 s1 p2", Conv2d(2, 3, 5, padding=2, rng=rng), normal(2, 2, 5, 8)),
        ("Conv2d 5×5 s2 p0", Conv2d(2, 3, 5, stride=2, rng=rng), normal(2, 2, 8, 9)),
        ("Conv2d 1×1 s1 p0", Conv2d(4, 3, 1, rng=rng), normal(2, 4, 5, 6)),
        # im2col at stride 1 (drawn from its own generator: the cases above and below keep theirs)
        ("Conv2d 3×3 s1 8ch", Conv2d(8, 4, 3, padding=1, rng=own), own.standard_normal((2, 8, 6, 5))),
        ("LeakyReLU 0.1", LeakyReLU(0.1), no_kinks(2, 3, 5, 7)),
        ("MaxPool2d 2×2 s2", MaxPool2d(2), no_ties(2, 3, 6, 7)),
        ("MaxPool2d 3×3 s2", MaxPool2d(3, 2), no_ties(2, 2, 7, 9)),
        ("MaxPool2d 3×3 s1", MaxPool2d(3, 1), no_ties(2, 2, 5, 6)),
        ("Linear", Linear(6, 4, rng=rng), normal(3, 6)),
        ("Flatten", Flatten(), normal(2, 3, 2, 2)),
        ("Reshape", Reshape(2, 6), normal(2, 3, 4)),
        ("Permute (NCHW → NHWC)", Permute(0, 2, 3, 1), normal(2, 3, 4, 5)),
        ("Dropout 0.5", Dropout(0.5, seed=1), normal(3, 8)),
        ("Sequential", net, normal(2, 3, 6, 8)),
        ("BatchNorm2d train", _batchnorm(BatchNorm2d, rng), normal(4, 3, 5, 6) * 2 + 1),
        ("BatchNorm2d eval", _batchnorm(BatchNorm2d, rng).eval(), normal(2, 3, 5, 4)),
        ("RoIPool2d 3×2", RoIPool2dFixed(RoIPool2d((3, 2), 0.25), [[0, 0, 0, 27, 23], [1, 4, 4, 19, 15],
                                                                  [1, -8, 10, 12, 40]]), no_ties(2, 2, 6, 7)),
    ]


def _batchnorm(cls, rng, c=3):
    """A BatchNorm2d with gamma, beta and running statistics away from their initial values."""
    bn = cls(c)
    bn.params["gamma"][:] = rng.uniform(0.5, 1.5, c)
    bn.params["beta"][:] = rng.standard_normal(c)
    bn.buffers["running_mean"][:] = rng.standard_normal(c)
    bn.buffers["running_var"][:] = rng.uniform(0.5, 2.0, c)
    return bn


def check_loss(seed: int = 0, S: int = 3, B: int = 2, C: int = 4, eps: float = 1e-5):
    """Gradient check of YoloLoss over every entry of pred, with the assignment held fixed.

    The responsible predictors and their IoU targets are constants of a step (the loss's
    docstring says why), so both the analytic and the numeric gradient use the same ones.
    """
    from .boxes import encode_targets
    from .loss import YoloLoss, assign

    rng = np.random.default_rng(seed)
    pred = rng.uniform(-0.5, 1.0, (2, S, S, 5 * B + C))
    boxes = np.array([[0.1, 0.2, 0.5, 0.7], [0.55, 0.1, 0.95, 0.4], [0.3, 0.6, 0.6, 0.95]])
    target = np.stack([encode_targets(boxes, np.array([0, 1, 3]), S, C),
                       encode_targets(boxes[:2], np.array([2, 2]), S, C)]).astype(np.float64)
    fixed = assign(pred, target, B)
    loss = YoloLoss(S=S, B=B, C=C)
    loss.forward(pred, target, assignment=fixed)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: YoloLoss(S=S, B=B, C=C).forward(pred, target, assignment=fixed),
                                 pred, eps)
    err, idx = worst(analytic, numeric)
    return GradcheckResult(err, f"dpred[{', '.join(str(int(i)) for i in idx)}]", {"dpred": err})


def step_for(layer) -> float:
    """The finite-difference step for `layer`: 1e-5, the piecewise-linear layers' (see
    `gradcheck`), with two exceptions. BatchNorm2d in training: its output is smooth
    (truncation error ∝ ε²) but every output of a channel moves with each input, so
    rounding, ∝ 1/ε, dominates at 1e-5 (worst relative error 2.6e-7 on a (4, 3, 5, 6) input)
    and 1e-4 balances them. Conv2d: linear in x, W and b, so the centred difference has no
    truncation error at any step, and 1e-2 keeps rounding far below the tolerance; Winograd's
    transforms leave more of it than im2col (1.5e-7 at 1e-5 on 64 channels)."""
    name = type(layer).__name__
    if name == "Conv2d":
        return 1e-2
    return 1e-4 if name == "BatchNorm2d" and layer.training else 1e-5


def run_all(print_fn=print, tol: float = 1e-7) -> bool:
    """Check every standard case and the loss; print a table; True when all pass."""
    print_fn(f"{'check':<20} {'input':<16} {'max rel. error':>15}  {'where':<16} result")
    ok = True
    rows = [(name, layer, x) for name, layer, x in standard_cases()] + [("YoloLoss", None, None)]
    for name, layer, x in rows:
        result = check_loss() if layer is None else gradcheck(layer, x, eps=step_for(layer))
        shape = "(2, 3, 3, 14)" if layer is None else str(tuple(x.shape))
        passed = result.passed(tol)
        ok &= passed
        print_fn(f"{name:<20} {shape:<16} {result.max_rel_error:>15.2e}  {result.where:<16} "
                 f"{'ok' if passed else 'FAIL'}")
    print_fn(f"{'all passed' if ok else 'SOME FAILED'} (float64, centred differences over every entry, "
             f"tolerance {tol:g})")
    return ok
