"""Detectors side by side: mAP by object size, speed, size and cost of one model.

What `benchmarks/compare_detectors.py` prints and chapter 9 shows, as functions:
- `map_by_size(detections, truths, num_classes)` (from `minidet.breakdown`): mAP@0.5 per
  object size band, SIZE_BANDS;
- `model_cost(model)`: parameters and forward FLOPs per image (convolutions and fully
  connected layers, a multiply-add counted 2), for a Sequential YOLO or an SSD's trunk and heads;
- `time_inference`, `time_train_step`: median wall-clock seconds over repeats, after a warm-up;
- `compare(models, loader)`: one row per model with all of the above, `format_table(rows)`.
Times are wall-clock on whatever runs them: compare rows measured in one run only.
"""
from __future__ import annotations

import time

import numpy as np

from .breakdown import SIZE_BANDS, map_by_size  # noqa: F401  (the table's size columns)
from .inference import evaluate_loader
from .models.summary import layer_flops

def _walk(layers, shape):
    """(flops, output shape) of layers applied in order to `shape` (N = 1)."""
    flops = 0
    for layer in layers:
        inner = getattr(layer, "layers", None)
        if inner is not None:
            f, out = _walk(inner, shape)
        else:
            out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
            f = layer_flops(layer, shape, out)
        flops += f
        shape = out
    return flops, shape


# The two-stage detectors' cost depends on how many proposals an image gets: no FLOPs figure.
TWO_STAGE = ("faster_rcnn", "fast_rcnn_ss", "crop_rcnn")


def model_cost(model) -> dict:
    """{"params": ..., "flops": ...} of one forward pass on one input_size² image (flops None
    for a two-stage detector, whose cost grows with its proposals)."""
    if model.arch["name"] in TWO_STAGE:
        return {"params": model.num_parameters(), "flops": None}
    shape = (1, 3, model.input_size, model.input_size)
    net = getattr(model, "net", None)
    if net is None:
        flops, _ = _walk(model.layers, shape)
    else:   # a TappedTrunk: the trunk in order, each head on its tap's map
        flops = 0
        for i, layer in enumerate(net.trunk):
            f, out = _walk([layer], shape)
            flops += f
            if i in net.heads:
                flops += _walk([net.heads[i]], out)[0]
            shape = out
    return {"params": model.num_parameters(), "flops": int(flops)}


def _median_seconds(fn, repeats: int, warmup: int = 1, fresh=None) -> float:
    """`fresh()` before each call, untimed: forgets what a model remembers of its inputs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if fresh is not None:
            fresh()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _forget_proposals(model):
    """Fast R-CNN and R-CNN keep each image's selective-search proposals (`ProposalMemo`);
    timing the same batch again must compute them again, as new images would."""
    return getattr(getattr(model, "proposals", None), "clear", None)


def time_inference(model, images, repeats: int = 5) -> float:
    """Median seconds of `model.forward(images)` in eval mode (images (N, 3, H, W) float32)."""
    was_training = model.training
    model.eval()
    try:
        return _median_seconds(lambda: model.forward(images), repeats, fresh=_forget_proposals(model))
    finally:
        if was_training:
            model.train()


def time_train_step(model, loss_fn, images, targets, repeats: int = 5) -> float:
    """Median seconds of one forward, loss, backward (no optimizer update: the same weights
    every repeat). `loss_fn.forward(output, targets)`, `loss_fn.backward()` as the trainer's."""
    def step():
        value = loss_fn.forward(model.forward(images), targets)
        grad = loss_fn.backward()
        model.backward(*grad) if isinstance(grad, tuple) else model.backward(grad)
        return value

    model.train()
    return _median_seconds(step, repeats, fresh=_forget_proposals(model))


def compare(models: dict, loader, train_batch=None, repeats: int = 5) -> list:
    """One dict per model: name, test mAP, mAP per size band, images/s, train step ms, params, FLOPs.

    models: {name: (model, loss_fn, target_fn)}; loader: a BatchLoader over the test split
    (no augmentation) at each model's input size (they must share it); train_batch: a Batch
    (images, boxes, labels) for the step timing, or None to skip it.
    """
    rows = []
    for name, (model, loss_fn, target_fn) in models.items():
        result, detections, truths = evaluate_loader(model, loader)
        row = {"name": name, "mAP": result["mAP"],
               "by_size": map_by_size(detections, truths, model.C), **model_cost(model)}
        images = next(iter(loader)).images
        row["images_per_s"] = len(images) / time_inference(model, images, repeats)
        if train_batch is not None:
            targets = np.stack([target_fn(b, lab) for b, lab in zip(train_batch.boxes, train_batch.labels)])
            row["train_step_ms"] = 1e3 * time_train_step(model, loss_fn, train_batch.images, targets, repeats)
        rows.append(row)
    return rows


def format_table(rows) -> str:
    """A Markdown table of `compare`'s rows."""
    bands = [f"{lo:.0%}–{hi:.0%}" if hi != float("inf") else f"≥ {lo:.0%}" for lo, hi, _, _ in rows[0]["by_size"]]
    bands[0] = f"< {rows[0]['by_size'][0][1]:.0%}"
    head = ["detector", "test mAP@0.5", *[f"mAP {b}" for b in bands], "images/s", "train step ms",
            "params (M)", "GFLOP/image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], f"{r['mAP']:.3f}", *[f"{m:.3f} ({n})" for _, _, n, m in r["by_size"]],
                 f"{r['images_per_s']:.0f}", f"{r['train_step_ms']:.0f}" if "train_step_ms" in r else "–",
                 f"{r['params'] / 1e6:.2f}", "–" if r["flops"] is None else f"{r['flops'] / 1e9:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
