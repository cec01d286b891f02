"""Batches for training and evaluation, prepared by background threads while the model runs.

`BatchLoader(dataset, ...)` iterates over a dataset whose `dataset[i]` has `image`
((H, W, 3) uint8 RGB), `boxes` ((K, 4) normalized corner boxes), `labels` ((K,) int) and
`difficult` ((K,) bool), as `VOCDataset` gives, and yields `Batch`es.

Threads, not processes: image decoding, resizing and the affine warp run in Pillow's C
code and release the GIL, and threads need no pickling. Up to `prefetch` batches are
queued ahead of the one being consumed; each batch is one task of the pool.

Determinism: the shuffle of epoch e is `default_rng([seed, e, 0]).permutation(n)` and
item i of epoch e is augmented with `default_rng([seed, e, 1, i])`, so a batch does not
depend on which thread made it or when.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .augment import AugmentConfig, augment, resize


@dataclass
class Batch:
    """N images and their objects.

    images: (N, 3, size, size) float32 in [0, 1] (NCHW). boxes[i]: (K_i, 4) float32
    normalized corner boxes, after augmentation. labels[i]: (K_i,) int64.
    difficult[i]: (K_i,) bool. targets: (N, S, S, 5 + C) float32 from `target_fn`, or None.
    indices: (N,) the dataset indices of the images.
    """

    images: np.ndarray
    boxes: list
    labels: list
    difficult: list
    targets: np.ndarray | None
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


class BatchLoader:
    """Iterate over `dataset` in batches; one `for` loop over the loader is one epoch.

    BatchLoader(dataset, batch_size=32, input_size=112, augment=False, shuffle=False,
                drop_last=False, seed=0, target_fn=None, train_on_difficult=False,
                workers=2, prefetch=2)

    augment: False for the plain resize (evaluation), True for `AugmentConfig()`, or an
    `AugmentConfig`. target_fn: `target_fn(boxes, labels) -> (S, S, 5 + C)` for one
    image (the trainer passes `minidet.boxes.encode_targets` with S and C bound); it gets
    the non-difficult objects only, unless `train_on_difficult` (darknet's VOC labels
    leave difficult objects out of training). The batch's boxes/labels/difficult lists
    hold every object, for evaluation.
    device: "cuda" uploads `images` and `targets` to the GPU in the worker thread, on a
    stream of its own, so the copy overlaps the training step (boxes stay on the host).
    epoch: the epoch the next iteration runs (0 at first, +1 per iteration started);
    set it to resume. `len(loader)` is the number of batches of an epoch.
    Close the loader (`close()`, or use it as a context manager) to stop its threads;
    garbage collection closes it too. An exception raised while making a batch is
    raised again, unchanged, by the `for` loop that asks for that batch.
    """

    def __init__(self, dataset, batch_size: int = 32, input_size: int = 112, augment=False,
                 shuffle: bool = False, drop_last: bool = False, seed: int = 0, target_fn=None,
                 train_on_difficult: bool = False, workers: int = 2, prefetch: int = 2, device: str = "cpu"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if workers < 1 or prefetch < 1:
            raise ValueError(f"workers and prefetch must be at least 1, got {workers} and {prefetch}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.input_size = input_size
        self.augment = AugmentConfig() if augment is True else (augment or None)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.target_fn = target_fn
        self.train_on_difficult = train_on_difficult
        self.workers = workers
        self.prefetch = prefetch
        self.device = device
        self.epoch = 0
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The dataset indices of `epoch`, in the order they are served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, 0]).permutation(n)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int):
        order = self.order(epoch)
        chunks = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        pool = self._executor()
        pending = deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(self.make_batch, chunk, epoch))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a loop left early (break, exception, close): drop what was queued
            for future in pending:
                future.cancel()

    def make_batch(self, indices: np.ndarray, epoch: int) -> Batch:
        """The batch of `indices` in `epoch` (what a worker thread runs)."""
        size = self.input_size
        images = np.empty((len(indices), 3, size, size), dtype=np.float32)
        boxes, labels, difficult, targets = [], [], [], []
        for row, i in enumerate(indices):
            sample = self.dataset[int(i)]
            b = np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4)
            lab = np.asarray(sample.labels, dtype=np.int64)
            dif = np.asarray(sample.difficult, dtype=bool)
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, epoch, 1, int(i)])
                images[row], b, keep = augment(sample.image, b, size, rng, self.augment)
                lab, dif = lab[keep], dif[keep]
            else:
                images[row] = resize(sample.image, size)
            boxes.append(b)
            labels.append(lab)
            difficult.append(dif)
            if self.target_fn is not None:
                use = np.ones(len(lab), bool) if self.train_on_difficult else ~dif
                targets.append(self.target_fn(b[use], lab[use]))
        stacked = np.stack(targets).astype(np.float32, copy=False) if targets else None
        if self.device == "cuda":
            images, stacked = _upload(images, stacked)
        return Batch(images, boxes, labels, difficult, stacked, np.asarray(indices))

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minidet-loader")
            return self._pool

    def close(self, wait: bool = True) -> None:
        """Stop the worker threads (queued batches are cancelled). The loader can be iterated
        again afterwards: it starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Not waiting: the collector may run this on one of the pool's own threads.
        try:
            self.close(wait=False)
        except Exception:
            pass


def _upload(images, targets):
    """Copy a batch to the GPU on a non-blocking stream of this thread, and wait for it."""
    import cupy

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        images = cupy.asarray(images)
        targets = cupy.asarray(targets) if targets is not None else None
    stream.synchronize()
    return images, targets
