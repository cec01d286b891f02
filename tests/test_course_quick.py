"""minidet.course.quick.relabelled: the same images and boxes under the mapped class names."""
import numpy as np
import pytest

from minidet.course.quick import colour_of, relabelled
from minidet.data import VOCDataset, generate


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), images=24, seed=3, image_size=32)


def test_colours_keep_every_box_and_map_every_name(source, tmp_path):
    out = relabelled(source, tmp_path / "colours", sizes={"train": 5, "test": 2})
    original = VOCDataset(source, "train")
    copy = VOCDataset(out, "train")
    assert copy.classes == ("red", "green", "blue", "yellow")
    assert copy.names == original.names[:5]
    for a, b in zip(original.annotations, copy.annotations):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert [copy.classes[k] for k in b.labels] == [colour_of(original.classes[k]) for k in a.labels]
    assert len(VOCDataset(out, "test")) == 2
    assert not (out / "ImageSets" / "Main" / "val.txt").exists()
    np.testing.assert_array_equal(copy.image(0), original.image(0))


def test_identity_rename_keeps_the_classes_and_all_splits(source, tmp_path):
    out = relabelled(source, tmp_path / "same", rename=lambda name: name)
    for split in ("train", "val", "test"):
        assert VOCDataset(out, split).names == VOCDataset(source, split).names
    assert VOCDataset(out, "train").classes == VOCDataset(source, "train").classes


def test_refuses_a_non_empty_output(source, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        relabelled(source, tmp_path / "busy")
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep"
