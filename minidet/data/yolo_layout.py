"""A reader of datasets in the YOLO layout (what labelling tools export), behind VOCDataset's
interface.

    ROOT/data.yaml                  names: [a, b, ...] (or {0: a, 1: b, ...});
                                    train / val / test: an image folder, a list file (.txt,
                                    one image path a line) or a list of them, relative to
                                    ROOT (or to `path:` when the file gives one)
    .../images/.../X.jpg            an image (jpg, jpeg, png, bmp, tif, tiff, webp)
    .../labels/.../X.txt            its objects, one `class cx cy w h` a line, normalized
                                    to [0, 1] (the label path is the image path with its
                                    last `images` folder replaced by `labels`)

The normalized corner box is x1 = cx − w/2, y1 = cy − h/2, x2 = cx + w/2, y2 = cy + h/2,
computed in float64 and stored as float32, as the VOC reader does; a corner beyond [0, 1]
by rounding (1e-6) is clipped silently, and a box empty after clipping dropped and counted.
Images of a folder are taken in sorted path order (recursively); those of a list file in
its order. The YAML is read with PyYAML's safe loader.

An image without a label file has no objects (as labelling tools mean it). A label file
without an image is reported in one warning, not an error. Bad input raises DatasetError
naming the file: a data.yaml without `names` or without the split, a label line with a
number of fields other than 5, values that are not numbers or are outside [0, 1], a class
index beyond `names`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError
from .voc import Annotation, VOCDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ROUNDING = 1e-6  # how far beyond [0, 1] a corner may land by float rounding alone


def read_yaml(root) -> dict:
    """The parsed ROOT/data.yaml (a mapping), or DatasetError naming it."""
    import yaml

    path = Path(root) / "data.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found (YOLO layout: data.yaml with names and splits)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DatasetError(f"{path}: cannot read it ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping with names and train/val/test entries")
    return data


def read_names(root) -> tuple:
    """The class names of data.yaml's `names` (a list, or a mapping 0..C−1 → name)."""
    path = Path(root) / "data.yaml"
    names = read_yaml(root).get("names")
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise DatasetError(f"{path}: names must be indexed 0..{len(names) - 1}, got {sorted(names)}")
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{path}: no 'names' list of class names")
    names = [str(n) for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"{path}: class names appear twice: {', '.join(repeated)}")
    return tuple(names)


def has_split(root, split) -> bool:
    return read_yaml(root).get(split) not in (None, "", [])


def label_path(image: Path) -> Path:
    """.../images/.../X.jpg → .../labels/.../X.txt (the last `images` folder of the path)."""
    parts = list(image.parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            parts[k] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")  # no images/ folder: the label sits beside the image


class YOLODataset(VOCDataset):
    """The images of one split of a YOLO-layout dataset, with their normalized boxes.

    YOLODataset(root, split="train", classes=None, cache_images=False): as VOCDataset.
    `names[i]` is the image's path relative to ROOT, without its extension.
    `orphan_labels`: label files of the split's label folders that have no image.
    """

    def __init__(self, root, split: str = "train", classes=None, cache_images: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset directory not found")
        self.split = split
        self.yaml_path = self.root / "data.yaml"
        data = read_yaml(self.root)
        found = read_names(self.root)
        if classes is not None and tuple(classes) != found:
            raise DatasetError(f"{self.yaml_path}: its names ({', '.join(found[:4])}, ...) are not the classes "
                               f"{', '.join(tuple(classes)[:4])}, ...")
        self.classes = found
        self.cache_images = cache_images
        self._cache = {}
        self.clipped_boxes = self.dropped_boxes = 0
        base = self.root / str(data.get("path", "")) if data.get("path") else self.root
        entry = data.get(split)
        if entry in (None, "", []):
            raise DatasetError(f"{self.yaml_path}: no {split!r} entry (the split's image folder or list file)")
        self._files, folders = [], []
        for item in entry if isinstance(entry, list) else [entry]:
            self._files += self._images_of(base, str(item), folders)
        self.names = [_relative(f, self.root) for f in self._files]
        self.annotations = [self._annotation(f, name) for f, name in zip(self._files, self.names)]
        self.orphan_labels = self._orphans(folders)
        if self.orphan_labels:
            warnings.warn(f"{self.root} ({split}): {len(self.orphan_labels)} label files have no image, e.g. "
                          f"{self.orphan_labels[0]}; they are ignored", stacklevel=2)
        if self.clipped_boxes or self.dropped_boxes:
            warnings.warn(f"{self.root} ({split}): clipped {self.clipped_boxes} boxes reaching outside their "
                          f"image; dropped {self.dropped_boxes} boxes empty after clipping", stacklevel=2)

    def _images_of(self, base: Path, item: str, folders: list) -> list:
        path = base / item
        if path.is_dir():
            folders.append(path)
            return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if path.suffix == ".txt" and path.is_file():
            files = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if line:
                    p = path.parent / line[2:] if line.startswith("./") else base / line
                    if not p.is_file():
                        raise DatasetError(f"{path}, line {number}: image {p} not found")
                    files.append(p)
            return files
        raise DatasetError(f"{self.yaml_path}: {self.split}: {item} is neither an image folder nor a list file "
                           f"({path} not found)")

    def _annotation(self, image: Path, name: str) -> Annotation:
        try:
            with Image.open(image) as img:  # the header only
                width, height = img.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"{image}: cannot read the image size ({e})") from None
        rows, labels = [], []
        path = label_path(image)
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise DatasetError(f"{path}, line {number}: expected 5 fields (class cx cy w h), got {len(fields)}")
            try:
                cls, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:])
            except ValueError:
                raise DatasetError(f"{path}, line {number}: not a class index and four numbers: {line.strip()!r}") \
                    from None
            if not 0 <= cls < len(self.classes):
                raise DatasetError(f"{path}, line {number}: class {cls} is beyond the {len(self.classes)} names of "
                                   f"{self.yaml_path.name}")
            if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
                raise DatasetError(f"{path}, line {number}: values must be normalized to [0, 1], got "
                                   f"{line.strip()!r}")
            box = self._kept_box([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], tolerance=ROUNDING)
            if box is None:
                continue
            rows.append(box)
            labels.append(cls)
        return Annotation.of(name, width, height, rows, labels)

    def _orphans(self, folders) -> list:
        have = {label_path(f) for f in self._files}
        orphans = []
        for folder in folders:
            labels = label_path(folder / "x.jpg").parent
            if labels.is_dir():
                orphans += sorted(p for p in labels.rglob("*.txt") if p not in have)
        return orphans

    def image_path(self, i: int) -> Path:
        return self._files[i]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").as_posix()


__all__ = ["YOLODataset", "read_yaml", "read_names", "label_path", "has_split", "IMAGE_SUFFIXES"]
