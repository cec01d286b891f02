"""Checkpoints: one .npz written atomically; round trips; clear errors for the wrong file."""
from __future__ import annotations

import os

import numpy as np
import pytest

import minidet.models.checkpoint as checkpoint
from minidet.errors import CheckpointError
from minidet.models import load, load_checkpoint, reduced_fast_yolo, save
from minidet.optim import SGD


def tiny(seed=0, C=20):
    return reduced_fast_yolo(56, 0.0625, C=C, seed=seed)


def params(model):
    return {name: np.array(p[k]) for name, p, _, k in model.named_parameters()}


def test_round_trip_every_weight_arch_and_metadata(tmp_path):
    model = tiny(seed=3, C=3)
    rng = np.random.default_rng(0)
    for _, p, _, k in model.named_parameters():  # not the initial values: any that the load could rebuild
        p[k] = rng.standard_normal(p[k].shape).astype(np.float32)
    opt = SGD(model)
    opt.velocity = {name: rng.standard_normal(w.shape).astype(np.float32) for name, w in params(model).items()}
    path = tmp_path / "model.npz"
    save(model, path, classes=["cat", "dog", "cow"], epoch=4, optimizer=opt.state_dict())

    loaded, meta = load_checkpoint(path)
    assert loaded.arch == model.arch
    assert loaded.arch["name"] == "reduced_fast_yolo"
    assert (loaded.input_size, loaded.S, loaded.B, loaded.C) == (56, 7, 2, 3)
    a, b = params(model), params(loaded)
    assert a.keys() == b.keys() and len(a) == 2 * 12
    for name in a:
        assert b[name].dtype == np.float32
        assert np.array_equal(a[name], b[name]), name
    assert meta["classes"] == ["cat", "dog", "cow"] and meta["epoch"] == 4
    restored = SGD(loaded)
    restored.load_state_dict(meta["optimizer"])
    for name, v in opt.velocity.items():
        assert np.array_equal(restored.velocity[name], v), name
    x = rng.uniform(0, 1, (2, 3, 56, 56)).astype(np.float32)
    model.eval(), loaded.eval()
    assert np.array_equal(model.forward(x), loaded.forward(x))
    assert params(load(path)).keys() == a.keys()


def test_other_architecture_raises_naming_the_file(tmp_path):
    path = tmp_path / "a.npz"
    save(tiny(), path)
    other = reduced_fast_yolo(112, 0.0625).arch
    with pytest.raises(CheckpointError, match="reduced_fast_yolo") as info:
        load_checkpoint(path, expect_arch=other)
    assert str(path) in str(info.value) and "input_size=112" in str(info.value)
    model, _ = load_checkpoint(path, expect_arch=tiny().arch)  # the right one loads
    assert model.arch == tiny().arch


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "not-minidet"])
def test_damaged_file_raises_naming_the_file(tmp_path, damage):
    path = tmp_path / "model.npz"
    save(tiny(), path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:len(data) // 3])
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, weights=np.zeros(3))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "missing.npz")


def test_non_finite_weights_are_refused(tmp_path):
    model = tiny()
    model.layers[0].params["W"][0, 0, 0, 0] = np.nan
    path = tmp_path / "nan.npz"
    save(model, path)
    with pytest.raises(CheckpointError, match="0.W"):
        load(path)


def test_save_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ckpt" / "last.npz"
    for seed in range(2):
        save(tiny(seed), path, epoch=seed)
    assert sorted(os.listdir(path.parent)) == ["last.npz"]
    assert load_checkpoint(path)[1]["epoch"] == 1


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """np.savez dies after writing part of the archive: the old checkpoint is intact, no temp file."""
    path = tmp_path / "last.npz"
    save(tiny(seed=1), path, epoch=1)
    before = path.read_bytes()
    real_savez = np.savez

    def broken_savez(file, **arrays):
        real_savez(file, **dict(list(arrays.items())[:3]))  # something reaches the disk...
        raise OSError(28, "No space left on device")         # ...then the disk fills up

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        save(tiny(seed=2), path, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]
    assert load_checkpoint(path)[1]["epoch"] == 1


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """A KeyboardInterrupt during the write is no different."""
    path = tmp_path / "best.npz"
    save(tiny(), path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(tiny(seed=5), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["best.npz"]
