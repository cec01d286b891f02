"""Which layout a dataset folder is in, and its reader: `open_dataset(root, split)`.

    yolo  ROOT/data.yaml                                  → YOLODataset (yolo_layout.py)
    coco  ROOT/annotations/instances_*.json               → COCODataset (coco.py)
    voc   anything else (ROOT/ImageSets/Main/SPLIT.txt)   → VOCDataset (voc.py)

Every reader has VOCDataset's interface (`classes`, `names`, `annotations`, `dataset[i]`,
`image(i)`, `ground_truths()`), and the same images and boxes give the same dataset in
any of the three.
"""
from __future__ import annotations

from pathlib import Path

from .coco import COCODataset, annotation_file, read_categories
from .voc import VOCDataset, read_classes
from .yolo_layout import YOLODataset, has_split, read_names

LAYOUTS = ("voc", "coco", "yolo")
READERS = {"voc": VOCDataset, "coco": COCODataset, "yolo": YOLODataset}


def detect_layout(root) -> str:
    """"yolo", "coco" or "voc" for the dataset folder `root` (see the module docstring)."""
    root = Path(root)
    if (root / "data.yaml").is_file():
        return "yolo"
    if any((root / "annotations").glob("instances_*.json")):
        return "coco"
    return "voc"


def open_dataset(root, split: str = "train", classes=None, cache_images: bool = False):
    """The reader of `root`'s layout for `split` (arguments as VOCDataset's)."""
    return READERS[detect_layout(root)](root, split, classes=classes, cache_images=cache_images)


def dataset_classes(root) -> tuple:
    """The class names of the dataset at `root`, in label order, whatever its layout."""
    layout = detect_layout(root)
    if layout == "yolo":
        return read_names(root)
    if layout == "coco":
        return read_categories(next(iter(sorted((Path(root) / "annotations").glob("instances_*.json")))))
    return read_classes(root)


def has_split_file(root, split: str) -> bool:
    """Whether `root` defines `split` (a split file, an annotation file, a data.yaml entry)."""
    layout = detect_layout(root)
    if layout == "yolo":
        return has_split(root, split)
    if layout == "coco":
        return annotation_file(root, split).is_file()
    return (Path(root) / "ImageSets" / "Main" / f"{split}.txt").is_file()


def splits_of(root) -> list:
    """The splits `root` defines, among train, val, test, trainval and any other it names."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "yolo":
        from .yolo_layout import read_yaml

        data = read_yaml(root)
        found = [k for k in data if k not in ("names", "nc", "path", "download") and has_split(root, k)]
    elif layout == "coco":
        found = [p.stem[len("instances_"):] for p in (root / "annotations").glob("instances_*.json")]
    else:
        found = [p.stem for p in (root / "ImageSets" / "Main").glob("*.txt") if "_" not in p.stem]
    usual = [s for s in ("train", "val", "test", "trainval") if s in found]
    return usual + sorted(s for s in found if s not in usual)


__all__ = ["LAYOUTS", "detect_layout", "open_dataset", "dataset_classes", "has_split_file", "splits_of"]
