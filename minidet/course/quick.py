"""The dataset of chapter 7's quick mode: a slice of the built-in dataset, relabelled.

The built-in dataset has 20 classes (4 colours × 5 shapes). Four classes that differ by
colour alone are far easier to tell apart than twenty that also differ by shape, so a run
of a few minutes on a CPU already gives a detector whose boxes a reader can check.
`relabelled` writes a copy of a VOC-layout dataset whose class names are mapped by a
function (by default `colour_of`: "red_circle" → "red"), keeping the first images of each
split. The images are linked, not copied; the annotations are rewritten with the new names.
"""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from ..data.voc import read_classes


def colour_of(name: str) -> str:
    """The colour half of a synthetic class name: "red_circle" → "red"."""
    return name.split("_", 1)[0]


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)


def relabelled(root, out, rename=colour_of, sizes: dict[str, int] | None = None) -> Path:
    """Write `root` (VOC layout) to `out` with every class name replaced by `rename(name)`.

    sizes: images kept per split, the first ones of ImageSets/Main/SPLIT.txt (None keeps
    every split whole; a split not named is left out). The class list of the copy is the
    renamed classes in their order of first appearance in `read_classes(root)`. Raises
    FileExistsError if `out` exists and is not empty (nothing is overwritten).
    """
    root, out = Path(root), Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new directory")
    classes = list(dict.fromkeys(rename(c) for c in read_classes(root)))
    split_dir = root / "ImageSets" / "Main"
    if sizes is None:
        sizes = {p.stem: None for p in sorted(split_dir.glob("*.txt")) if p.stem != "trainval"}
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for split, size in sizes.items():
        names = [line.split()[0] for line in (split_dir / f"{split}.txt").read_text().splitlines() if line.strip()]
        names = names[:size]
        for name in names:
            tree = ET.parse(root / "Annotations" / f"{name}.xml")
            for node in tree.getroot().iter("object"):
                node.find("name").text = rename(node.find("name").text)
            tree.write(out / "Annotations" / f"{name}.xml", encoding="unicode")
            _link_or_copy(root / "JPEGImages" / f"{name}.jpg", out / "JPEGImages" / f"{name}.jpg")
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    (out / "classes.txt").write_text("".join(c + "\n" for c in classes))
    return out
