"""Proposals computed once per image and kept on disk: Fast R-CNN trains for many epochs on the
same proposals, and selective search costs far more per image than a training step.

One .npz per (dataset, split, method, settings) in `$XDG_CACHE_HOME/minidet/proposals/`, named
by a hash of the dataset's resolved path, the split, its image names, the method, its settings
and VERSION (so a changed dataset or setting never reads stale proposals). It holds `boxes`
(ΣP, 4) float64 pixel corners, every image's ranked proposals one after another, and `offsets`
(n + 1,) int64: image i's are boxes[offsets[i]:offsets[i + 1]]. The file is written atomically;
one that cannot be read is computed again and replaced.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ..data.synth import cache_dir
from ..files import atomic_write
from .selective_search import selective_search
from .windows import sliding_windows

VERSION = 1
METHODS = {
    "selective_search": selective_search,
    "sliding_windows": lambda image, **kw: sliding_windows(image.shape[1], image.shape[0], **kw),
}


def cache_path(dataset, method: str, settings: dict, directory=None) -> Path:
    """Where `cached_proposals` keeps the proposals of `dataset` (anything with `.root`,
    `.split` and `.names`, as VOCDataset) for `method` with `settings`."""
    key = json.dumps([VERSION, str(Path(dataset.root).resolve()), dataset.split, list(dataset.names), method,
                      sorted(settings.items())], default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return Path(directory or cache_dir() / "proposals") / f"{method}-{dataset.split}-{digest}.npz"


def _read(path: Path, n: int):
    try:
        with np.load(path) as f:
            boxes, offsets = f["boxes"], f["offsets"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if offsets.shape != (n + 1,) or boxes.ndim != 2 or boxes.shape[1] != 4 or offsets[-1] != len(boxes):
        return None
    return [boxes[offsets[i]:offsets[i + 1]] for i in range(n)]


def cached_proposals(dataset, method: str = "selective_search", directory=None, **settings) -> list:
    """Each image's (P_i, 4) ranked pixel-corner proposals, from the cache or computed now
    (`METHODS[method](image, **settings)` on `dataset[i].image`) and stored."""
    if method not in METHODS:
        raise ValueError(f"cached_proposals: unknown method {method!r}; choose from {sorted(METHODS)}")
    path = cache_path(dataset, method, settings, directory)
    n = len(dataset.names)
    found = _read(path, n) if path.exists() else None
    if found is not None:
        return found
    proposals = [np.asarray(METHODS[method](dataset[i].image, **settings), dtype=np.float64).reshape(-1, 4)
                 for i in range(n)]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in proposals])]).astype(np.int64)
    boxes = np.concatenate(proposals) if proposals else np.zeros((0, 4))
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, boxes=boxes, offsets=offsets)
    return proposals
