"""Which images a run trains, validates and tests on: a held-out 10 % when there is no val
split, trainval when there is no train split, several datasets at once, and a default run
length set by optimizer steps."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from minidet.cli import main
from minidet.data import VOCDataset
from minidet.data.convert import convert
from minidet.data.splits import Concat, holdout, training_splits
from minidet.errors import DatasetError
from minidet.train import DEFAULT_STEPS, TrainConfig, epochs_for

pytestmark = pytest.mark.usefixtures("isolated_cache")


def variant(tiny_voc, tmp_path, name, drop=(), classes=None):
    """A copy of tiny_voc without the split files `drop` (and with other class names)."""
    root = tmp_path / name
    shutil.copytree(tiny_voc, root)
    for split in drop:
        (root / "ImageSets" / "Main" / f"{split}.txt").unlink()
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    return root


def test_holdout_is_deterministic_disjoint_and_ten_percent():
    kept, held = holdout(400)
    again_kept, again_held = holdout(400)
    assert np.array_equal(held, again_held) and np.array_equal(kept, again_kept)
    assert len(held) == 40 and not set(kept) & set(held) and sorted(set(kept) | set(held)) == list(range(400))
    assert len(holdout(5)[1]) == 1 and len(holdout(2)[1]) == 1 and len(holdout(1)[1]) == 0
    assert not np.array_equal(held, np.arange(40))  # spread over the split, not its first images


def test_no_val_split_holds_out_ten_percent_of_train(tiny_voc, tmp_path):
    root = variant(tiny_voc, tmp_path, "noval", drop=["val"])
    s = training_splits(root)
    full = VOCDataset(root, "train")
    assert len(s.train) == 27 and len(s.val) == 3 and len(s.test) == 3
    assert sorted(s.train.names + s.val.names) == sorted(full.names) and not set(s.train.names) & set(s.val.names)
    assert len(s.notes) == 1 and "no val split; holding out 3 of the 30 train images (10 %" in s.notes[0]
    assert s.record[str(root)]["held_out"] == s.val.names
    assert np.array_equal(s.val[0].image, full[full.names.index(s.val.names[0])].image)


def test_trainval_is_used_when_train_is_missing(tiny_voc, tmp_path):
    both = training_splits(variant(tiny_voc, tmp_path, "tv", drop=["train"]))   # trainval and val: trainval − val
    assert len(both.train) == 30 and not set(both.train.names) & set(both.val.names) and len(both.val) == 3
    assert "training on trainval minus val" in both.notes[0]
    only = training_splits(variant(tiny_voc, tmp_path, "tvonly", drop=["train", "val"]))  # hold out of trainval
    assert len(only.train) + len(only.val) == 33 and "holding out 3 of the 33 trainval images" in only.notes[0]


def test_named_splits_and_no_training_split(tiny_voc, tmp_path):
    s = training_splits(tiny_voc, train="val", val="test")
    assert (len(s.train), len(s.val)) == (3, 3) and not s.notes
    with pytest.raises(DatasetError, match="no training split"):
        training_splits(variant(tiny_voc, tmp_path, "none", drop=["train", "trainval"]))
    with pytest.raises(DatasetError, match="split file not found"):
        training_splits(tiny_voc, val="nosuch")


def test_several_datasets_concatenate_and_test_where_a_test_split_exists(tiny_voc, tmp_path):
    second = variant(tiny_voc, tmp_path, "second", drop=["test"])
    s = training_splits([tiny_voc, second])
    assert isinstance(s.train, Concat) and len(s.train) == 60 and len(s.val) == 6
    assert len(s.test) == 3 and s.record["test"] == [str(tiny_voc)]
    assert np.array_equal(s.train[45].image, VOCDataset(second, "train")[15].image)
    other = variant(tiny_voc, tmp_path, "other", classes="a\nb\n")
    with pytest.raises(DatasetError, match="differ from those of"):
        training_splits([tiny_voc, other])


def test_default_run_length_is_set_by_optimizer_steps():
    assert epochs_for(TrainConfig(), 2000 // 32) == 20          # the built-in dataset: 20 epochs
    assert epochs_for(TrainConfig(), 11) == -(-DEFAULT_STEPS // 11)  # a 360-image split: as many steps
    assert epochs_for(TrainConfig(epochs=3), 11) == 3


def test_train_on_two_datasets_one_without_val_and_in_coco_layout(tiny_voc, tmp_path, capsys, tiny_train_args):
    noval = variant(tiny_voc, tmp_path, "noval", drop=["val"])
    coco = tmp_path / "coco"
    convert(noval, coco, "coco", log=lambda *_: None)
    out = tmp_path / "run"
    main(["train", "--data", str(tiny_voc), "--data", str(coco), *tiny_train_args, "--out", str(out)])
    stdout = capsys.readouterr().out
    notes = [line for line in stdout.splitlines() if "no val split" in line]
    assert len(notes) == 1 and str(coco) in notes[0]
    assert "warning: the training split has 57 images" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["splits"][str(coco)]["val"] == "3 images held out of train"
    assert len(metrics["splits"][str(coco)]["held_out"]) == 3 and metrics["splits"]["test"] == [str(tiny_voc), str(coco)]
    assert "test_mAP" in metrics


def test_an_empty_held_out_or_concatenated_split_names_its_sources(tiny_voc, tmp_path):
    from minidet.data.splits import Subset
    from minidet.validate import require_evaluable

    a = VOCDataset(variant(tiny_voc, tmp_path, "a"), "val")
    b = VOCDataset(variant(tiny_voc, tmp_path, "b"), "val")
    with pytest.raises(DatasetError, match=r"a/ImageSets/Main/val\.txt \(0 of its images\): the val split is empty"):
        require_evaluable(Subset(a, []))
    with pytest.raises(DatasetError, match=r"a/ImageSets/Main/val\.txt \(0 of its images\) \+ .*b/ImageSets/Main/val\.txt.*empty"):
        require_evaluable(Concat([Subset(a, []), Subset(b, [])]))
    require_evaluable(Concat([a, b]))  # both have objects: nothing to say
