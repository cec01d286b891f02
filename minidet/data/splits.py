"""Which images a run trains, validates and tests on, from one or several dataset roots.

`training_splits(roots, train=None, val=None, test="test")` returns a `Splits`:

- train: the named split; by default `train`, else `trainval` when a root has no `train`
  (minus the images of its `val` split if it has one, so none is both trained and
  validated on);
- val: the named split; by default `val`, else a deterministic 10 % of the root's training
  images, held out (`holdout`), said on one line and recorded in `Splits.notes`;
- test: the split named `test` of every root that has one (the paper trains on VOC 2007 +
  2012 trainval and tests on 2007 test, the only one of the two with a public test split).

Several roots are concatenated in the order given; they must have the same classes in the
same order. Every reader is `layouts.open_dataset`, so the roots may be in any layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .layouts import dataset_classes, has_split_file, open_dataset

HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 0  # fixed: runs of any --seed validate on the same images


class Subset:
    """The images `indices` of `dataset`, with its interface (`classes`, `annotations`,
    `names`, `dataset[i]`, `image(i)`, `ground_truths()`)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        self.classes = dataset.classes
        self.annotations = [dataset.annotations[i] for i in self.indices]
        self.names = [dataset.names[i] for i in self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def image(self, i):
        return self.dataset.image(self.indices[i])

    def ground_truths(self):
        return [(a.boxes, a.labels, a.difficult) for a in self.annotations]


class Concat(Subset):
    """Datasets one after the other (the same classes), with the same interface."""

    def __init__(self, datasets):
        self.parts = list(datasets)
        self.classes = self.parts[0].classes
        self._where = [(p, i) for p in self.parts for i in range(len(p))]
        self.annotations = [p.annotations[i] for p, i in self._where]
        self.names = [p.names[i] for p, i in self._where]

    def __len__(self):
        return len(self._where)

    def __getitem__(self, i):
        part, k = self._where[i]
        return part[k]

    def image(self, i):
        part, k = self._where[i]
        return part.image(k)


def holdout(n: int, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED):
    """(kept, held) index arrays, ascending: round(fraction·n) images (at least 1 when n ≥ 2)
    chosen by a fixed permutation, so the same n gives the same split in every run."""
    held_count = min(n - 1, max(1, int(round(fraction * n)))) if n >= 2 else 0
    held = np.sort(np.random.default_rng(seed).permutation(n)[:held_count])
    kept = np.setdiff1d(np.arange(n), held)
    return kept, held


@dataclass
class Splits:
    """train, val and test datasets (test None when no root has the test split), the classes,
    and `notes`: one line per decision taken for the user (held-out val, trainval used)."""

    train: object
    val: object
    test: object
    classes: tuple
    notes: list = field(default_factory=list)
    record: dict = field(default_factory=dict)  # what metrics.json records about the splits


def _one_root(root, train, val, cache, classes, notes, record):
    """(train dataset, val dataset) of one root, following the module docstring's rules."""
    if train is None:
        if has_split_file(root, "train"):
            train = "train"
        elif has_split_file(root, "trainval"):
            train = "trainval"
        else:
            raise DatasetError(f"{root}: no training split (looked for train, then trainval); name one with "
                               f"--train-split")
    train_set = open_dataset(root, train, classes=classes, cache_images=cache)
    if val is None and has_split_file(root, "val"):
        val = "val"
    if val is not None:
        val_set = open_dataset(root, val, classes=train_set.classes, cache_images=cache)
        if train == "trainval":  # trainval holds val: keep only the rest for training
            held = set(val_set.names)
            train_set = Subset(train_set, [i for i, n in enumerate(train_set.names) if n not in held])
            notes.append(f"{root}: no train split; training on trainval minus val ({len(train_set)} images)")
        record[str(root)] = {"train": train, "val": val}
        return train_set, val_set
    kept, held = holdout(len(train_set))
    if len(held) == 0:
        raise DatasetError(f"{root}: no val split, and the {train} split has {len(train_set)} image(s): too few to "
                           f"hold some out for validation")
    notes.append(f"{root}: no val split; holding out {len(held)} of the {len(train_set)} {train} images "
                 f"({100 * HOLDOUT_FRACTION:.0f} %, the same in every run) for validation")
    record[str(root)] = {"train": train, "val": f"{len(held)} images held out of {train}",
                         "held_out": [train_set.names[i] for i in held]}
    return Subset(train_set, kept), Subset(train_set, held)


def training_splits(roots, train=None, val=None, test: str = "test", cache_images: bool = True) -> Splits:
    """The Splits of one root or a list of roots (see the module docstring)."""
    roots = [roots] if isinstance(roots, (str, bytes)) or not hasattr(roots, "__iter__") else list(roots)
    notes, record, trains, vals, classes = [], {}, [], [], None
    for root in roots:
        if not Path(root).is_dir():
            raise DatasetError(f"{root}: dataset directory not found")
    for root in roots[1:]:  # before reading any annotation: a wrong list fails every file
        first, theirs = dataset_classes(roots[0]), dataset_classes(root)
        if tuple(theirs) != tuple(first):
            raise DatasetError(f"{root}: its classes ({', '.join(theirs[:4])}, ...) differ from those of "
                               f"{roots[0]} ({', '.join(first[:4])}, ...); datasets trained on together must "
                               f"have the same classes in the same order")
    for root in roots:
        t, v = _one_root(root, train, val, cache_images, None, notes, record)
        classes = t.classes if classes is None else classes
        trains.append(t)
        vals.append(v)
    tests = [open_dataset(r, test, classes=classes, cache_images=cache_images) for r in roots
             if has_split_file(r, test)]
    one = lambda parts: parts[0] if len(parts) == 1 else Concat(parts)  # noqa: E731
    record["test"] = [str(r) for r in roots if has_split_file(r, test)]
    return Splits(one(trains), one(vals), one(tests) if tests else None, tuple(classes), notes, record)


__all__ = ["training_splits", "Splits", "Subset", "Concat", "holdout", "HOLDOUT_FRACTION"]
