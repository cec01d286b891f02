"""The synthetic dataset: determinism, the cache, and what the annotations promise."""
import os

import numpy as np
import pytest

from minidet.data import SYNTH_CLASSES, VOCDataset, builtin_dataset, generate
from minidet.data import synth
from minidet.errors import DatasetError


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "d", images=24, seed=3)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, tiny):
    again = generate(tmp_path / "again", images=24, seed=3)
    assert files(again) == files(tiny)
    other = files(generate(tmp_path / "other", images=24, seed=4))
    assert other.keys() == files(tiny).keys()
    assert other["JPEGImages/000001.jpg"] != files(tiny)["JPEGImages/000001.jpg"]


def test_layout_splits_and_classes(tiny):
    assert len(SYNTH_CLASSES) == 20 and "red_circle" in SYNTH_CLASSES
    assert (tiny / "classes.txt").read_text().split() == list(SYNTH_CLASSES)
    sets = {s: (tiny / "ImageSets" / "Main" / f"{s}.txt").read_text().split() for s in ("train", "val", "test", "trainval")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [20, 2, 2]
    assert sets["trainval"] == sets["train"] + sets["val"]
    assert not set(sets["trainval"]) & set(sets["test"])
    assert synth.split_sizes(2400) == {"train": 2000, "val": 200, "test": 200}


def test_annotations_are_valid_boxes_of_visible_shapes(tiny):
    ds = VOCDataset(tiny, "trainval")
    assert ds.classes == SYNTH_CLASSES and ds.clipped_boxes == 0
    for i, a in enumerate(ds.annotations):
        assert 1 <= len(a.labels) <= 5 and not a.difficult.any()
        assert ((a.boxes >= 0) & (a.boxes <= 1)).all()
        assert (a.boxes[:, 2:] > a.boxes[:, :2]).all()
        image = ds[i].image.astype(int)
        for box in a.boxes:  # a saturated object lies inside each box
            x1, y1, x2, y2 = np.round(box * 128).astype(int)
            patch = image[y1:y2, x1:x2]
            assert (patch.max(-1) - patch.min(-1)).max() > 100


def test_objects_truncated_and_sizes_spread():
    rng_objects = [synth.draw_image(np.random.default_rng([0, i]), 128)[1] for i in range(300)]
    objects = [o for image in rng_objects for o in image]
    truncated = [o for o in objects if o[2]]
    assert 0.1 < len(truncated) / len(objects) < 0.35
    for _, (x0, y0, x1, y1), _ in truncated:  # a truncated box touches the border
        assert min(x0, y0) == 0 or max(x1, y1) == 127
    sides = np.array([max(b[2] - b[0], b[3] - b[1]) + 1 for _, b, _ in objects]) / 128
    assert sides.min() < 0.13 and sides.max() > 0.6
    assert {name for name, _, _ in objects} == set(SYNTH_CLASSES)


def test_builtin_dataset_is_cached_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = builtin_dataset(images=12, seed=1)
    assert path == tmp_path / "cache" / "minidet" / "synth-v1-seed1-n12"
    assert (path / "synth.json").is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    stamp = (path / "JPEGImages" / "000001.jpg").stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(synth, "generate", lambda *a, **k: calls.append(a))
    assert builtin_dataset(images=12, seed=1) == path and not calls  # reused, not regenerated
    assert (path / "JPEGImages" / "000001.jpg").stat().st_mtime_ns == stamp


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def broken(out, **kwargs):
        (out / "Annotations").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "generate", broken)
    with pytest.raises(KeyboardInterrupt):
        builtin_dataset(root=tmp_path / "d", images=12)
    assert os.listdir(tmp_path) == []


def test_builtin_dataset_root_override_and_foreign_directory(tmp_path):
    path = builtin_dataset(root=tmp_path / "mine", images=12, seed=0)
    assert path == tmp_path / "mine" and len(VOCDataset(path, "train")) == 10
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="other"):
        builtin_dataset(root=tmp_path / "other", images=12)


def test_a_failed_write_leaves_nothing_and_names_the_directory(tmp_path, monkeypatch):
    """A full disk mid-way: one DatasetError naming the output; neither the output nor the
    hidden staging directory is left behind, and a dataset already there is untouched."""
    import errno

    from PIL import Image

    calls = {"n": 0}
    real_save = Image.Image.save

    def save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(DatasetError, match=r"synth.*No space left on device"):
        generate(tmp_path / "synth", images=12, seed=0)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(Image.Image, "save", real_save)
    root = generate(tmp_path / "synth", images=12, seed=0)
    before = files(root)
    calls["n"] = 0
    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(DatasetError, match="No space left"):
        generate(root, images=12, seed=1, force=True)
    assert files(root) == before and os.listdir(tmp_path) == ["synth"]
