"""R-CNN at small scale as a study outside the trainer (`minidet train --model rcnn` is the
trainer's form): selective-search proposals, a small CNN on warped crops, the multi-task
loss; mAP@0.5 on the test split and seconds per image.

    python benchmarks/rcnn_study.py [--train-images 600] [--steps 1500] [--test-images 200]

Training: each step draws 2 images of the first --train-images of the train split, samples 32
RoIs from each (`sample_rois`: up to a quarter foreground) and takes one SGD step (lr 0.01,
momentum 0.9, decay 5e-4; lr ÷ 10 for the last quarter). Proposals are computed once per
image before training (their time is reported apart). Test: every selective-search proposal
is classified (`detect_image`), mAP@0.5 all-point on normalized boxes (`minidet.eval`).
Seconds per test image = proposals + classification, one image at a time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)
import numpy as np  # noqa: E402

from minidet.data import VOCDataset, builtin_dataset  # noqa: E402
from minidet.eval import evaluate  # noqa: E402
from minidet.optim import SGD  # noqa: E402
from minidet.proposals import selective_search  # noqa: E402
from minidet.rcnn import MultiTaskLoss  # noqa: E402
from minidet.rcnn.classifier import crop_classifier, detect_image, train_step, training_batch  # noqa: E402

SIZE, CONTEXT = 32, 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="a VOC-layout dataset (default: the built-in one)")
    p.add_argument("--train-images", type=int, default=600)
    p.add_argument("--test-images", type=int, default=200)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--width", type=int, default=16)
    args = p.parse_args(argv)
    root = args.data or builtin_dataset()
    train, test = VOCDataset(root, "train", cache_images=True), VOCDataset(root, "test")
    C = len(train.classes)
    train_samples = [train[i] for i in range(min(args.train_images, len(train)))]
    t0 = time.perf_counter()
    train_props = [selective_search(s.image) for s in train_samples]
    t_props = time.perf_counter() - t0
    print(f"{len(train_samples)} train images: selective search {1000 * t_props / len(train_samples):.0f} ms/image")

    rng = np.random.default_rng(0)
    model = crop_classifier(C, size=SIZE, width=args.width, rng=np.random.default_rng(1))
    loss, opt = MultiTaskLoss(), SGD(model, lr=0.01)
    t0, values = time.perf_counter(), []
    for step in range(args.steps):
        opt.lr = 0.01 if step < 0.75 * args.steps else 0.001
        idx = rng.choice(len(train_samples), 2, replace=False)
        batch = training_batch([train_samples[i] for i in idx], [train_props[i] for i in idx], rng, size=SIZE,
                               context=CONTEXT)
        values.append(train_step(model, loss, opt, batch, C))
        if (step + 1) % max(args.steps // 10, 1) == 0:
            print(f"step {step + 1}: loss {np.mean(values[-50:]):.3f} ({loss.parts})", flush=True)
    t_train = time.perf_counter() - t0
    print(f"training: {args.steps} steps, {1000 * t_train / args.steps:.0f} ms/step")

    dets, truths, seconds = [], [], 0.0
    for i in range(min(args.test_images, len(test))):
        s = test[i]
        H, W = s.image.shape[:2]
        t0 = time.perf_counter()
        d = detect_image(model, s.image, selective_search(s.image), C, size=SIZE, context=CONTEXT)
        seconds += time.perf_counter() - t0
        dets.append((d.boxes / [W, H, W, H], d.scores, d.labels))
        truths.append((s.boxes, s.labels, s.difficult))
    n = len(dets)
    result = evaluate(dets, truths, num_classes=C)
    print(f"test: {n} images, mAP@0.5 {result['mAP']:.3f}, {1000 * seconds / n:.0f} ms/image "
          f"(selective search + {SIZE}×{SIZE} crops classified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
