"""Proposals computed once per image and cached on disk."""
from types import SimpleNamespace

import numpy as np
import pytest

import minidet.proposals.cache as cache
from minidet.proposals import cache_path, cached_proposals


class TinySet:
    def __init__(self, root, names=("a", "b", "c")):
        self.root, self.split, self.names = root, "test", list(names)

    def __getitem__(self, i):
        img = np.zeros((10 + i, 20, 3), np.uint8)
        return SimpleNamespace(image=img)


@pytest.fixture
def counting(monkeypatch):
    calls = []

    def fake(image, step=1):
        calls.append(image.shape)
        H = image.shape[0]
        return [[0, 0, step, H]] * (H - 9)  # image i gives i + 1 boxes

    monkeypatch.setitem(cache.METHODS, "fake", fake)
    return calls


def test_computed_once_then_read_back(tmp_path, counting):
    ds = TinySet(tmp_path)
    first = cached_proposals(ds, "fake", directory=tmp_path / "c", step=2)
    assert len(counting) == 3 and [len(p) for p in first] == [1, 2, 3]
    again = cached_proposals(ds, "fake", directory=tmp_path / "c", step=2)
    assert len(counting) == 3  # no new calls
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert again[2].tolist() == [[0, 0, 2, 12]] * 3


def test_settings_split_and_images_change_the_file(tmp_path, counting):
    ds = TinySet(tmp_path)
    base = cache_path(ds, "fake", {"step": 2}, tmp_path)
    assert cache_path(ds, "fake", {"step": 3}, tmp_path) != base
    assert cache_path(TinySet(tmp_path, ("a", "b")), "fake", {"step": 2}, tmp_path) != base
    other = TinySet(tmp_path)
    other.split = "train"
    assert cache_path(other, "fake", {"step": 2}, tmp_path) != base
    cached_proposals(ds, "fake", directory=tmp_path, step=2)
    cached_proposals(ds, "fake", directory=tmp_path, step=3)
    assert len(counting) == 6


def test_an_unreadable_file_is_recomputed_and_replaced(tmp_path, counting):
    ds = TinySet(tmp_path)
    path = cache_path(ds, "fake", {}, tmp_path)
    path.write_bytes(b"not an npz")
    assert [len(p) for p in cached_proposals(ds, "fake", directory=tmp_path)] == [1, 2, 3]
    assert len(counting) == 3
    cached_proposals(ds, "fake", directory=tmp_path)
    assert len(counting) == 3 and not list(tmp_path.glob("*.tmp"))


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        cached_proposals(TinySet("."), "nope")
