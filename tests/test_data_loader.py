"""BatchLoader: shapes, determinism across threads, epochs, errors and shutdown."""
import gc
import threading
import time

import numpy as np
import pytest

from minidet.data import BatchLoader, VOCDataset, generate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("loader") / "d", images=24, seed=0)
    return VOCDataset(root, "train", cache_images=True)  # 20 images


def fake_targets(boxes, labels):
    t = np.zeros((7, 7, 5 + 20), np.float32)
    t[0, 0, 0] = len(labels)
    return t


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("minidet-loader")]


def test_batch_shapes_and_dtypes(dataset):
    with BatchLoader(dataset, batch_size=8, input_size=64, augment=True, shuffle=True, target_fn=fake_targets) as loader:
        batches = list(loader)
    assert len(loader) == 3 and [len(b) for b in batches] == [8, 8, 4]
    b = batches[0]
    assert b.images.shape == (8, 3, 64, 64) and b.images.dtype == np.float32
    assert 0 <= b.images.min() and b.images.max() <= 1
    assert b.targets.shape == (8, 7, 7, 25) and b.targets.dtype == np.float32
    assert len(b.boxes) == len(b.labels) == len(b.difficult) == 8
    for boxes, labels, difficult, t in zip(b.boxes, b.labels, b.difficult, b.targets):
        assert boxes.shape == (len(labels), 4) and labels.dtype == np.int64 and difficult.dtype == bool
        assert t[0, 0, 0] == len(labels)  # the target saw the augmented objects


def test_every_item_once_per_epoch_and_drop_last(dataset):
    loader = BatchLoader(dataset, batch_size=6, input_size=32, shuffle=True, seed=1)
    first = np.concatenate([b.indices for b in loader])
    second = np.concatenate([b.indices for b in loader])
    assert sorted(first) == list(range(20)) and sorted(second) == list(range(20))
    assert not np.array_equal(first, second)  # reshuffled each epoch
    assert loader.epoch == 2
    loader.drop_last = True
    assert len(loader) == 3 and sum(len(b) for b in loader) == 18
    plain = BatchLoader(dataset, batch_size=6, input_size=32)
    assert np.concatenate([b.indices for b in plain]).tolist() == list(range(20))
    loader.close()


def test_deterministic_for_a_seed_whatever_the_threads(dataset):
    def run(workers, prefetch):
        with BatchLoader(dataset, batch_size=4, input_size=48, augment=True, shuffle=True, seed=7,
                         workers=workers, prefetch=prefetch) as loader:
            loader.epoch = 3
            return list(loader)

    a, b = run(1, 1), run(3, 4)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.indices, y.indices) and np.array_equal(x.images, y.images)
        assert all(np.array_equal(p, q) for p, q in zip(x.boxes, y.boxes))


class Exploding:
    def __init__(self, dataset, bad):
        self.dataset, self.bad = dataset, bad

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if i == self.bad:
            raise RuntimeError(f"item {i} is broken")
        return self.dataset[i]


def test_worker_exception_reaches_the_consumer(dataset):
    with BatchLoader(Exploding(dataset, 13), batch_size=4, input_size=32) as loader:
        seen = []
        with pytest.raises(RuntimeError, match="item 13 is broken"):
            for batch in loader:
                seen.append(batch)
        assert len(seen) == 3  # the batches before the broken one arrived


def test_threads_stop_on_close_and_on_collection(dataset):
    loader = BatchLoader(dataset, batch_size=2, input_size=32, workers=2, prefetch=3)
    it = iter(loader)
    next(it)
    assert loader_threads()
    it.close()
    loader.close()
    assert not loader_threads()

    loader = BatchLoader(dataset, batch_size=2, input_size=32)
    next(iter(loader))
    del loader
    gc.collect()
    deadline = time.monotonic() + 5
    while loader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not loader_threads()
