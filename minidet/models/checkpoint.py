"""Saving and loading models: one `.npz` file, written atomically.

Layout of the file (a NumPy .npz archive, no pickles):
    "param/<name>"     each parameter, by its name in `model.named_parameters()` ("0.W", ...)
    "buffer/<name>"    each buffer (state that is not a parameter: BatchNorm2d's running
                       statistics), by its name in `model.named_buffers()` ("1.running_mean")
    "arch"             JSON: {"name": ..., "kwargs": {...}} — what `models.build` rebuilds
    "meta"             JSON: the keyword metadata (class names, epoch, settings, ...)
    "state/<k>/<name>" arrays of metadata given as dicts of arrays (optimizer velocities)

The file is written to a temporary name in the same directory, flushed to disk, then
renamed over the target: a crash mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..errors import CheckpointError
from ..files import atomic_write
from .yolo import build

FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive
_MAGICS = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"\x93NUMPY": "a .npy array",
           b"GIF8": "a GIF image"}


def write_npz_atomic(path, arrays: dict):
    """np.savez `arrays` to `path` via a temporary file (`.NAME.XXXX.tmp`) and an atomic
    rename; a failed write (full disk, read-only) raises FileWriteError naming `path`."""
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())


def save(model, path, **metadata):
    """Save `model`'s weights and architecture, and `metadata`, to `path` (.npz), atomically.

    JSON-serialisable metadata (e.g. classes=[...], epoch=3) goes in "meta"; a metadata
    value that is a dict of arrays (e.g. optimizer=opt.state_dict()) is stored as arrays.
    """
    arrays = {f"param/{name}": to_numpy(params[key]) for name, params, _, key in model.named_parameters()}
    arrays.update({f"buffer/{name}": to_numpy(buffers[key]) for name, buffers, key in model.named_buffers()})
    meta = {"format": FORMAT_VERSION}
    for k, v in metadata.items():
        if isinstance(v, dict) and any(isinstance(a, np.ndarray) for a in v.values()):
            for sub, a in v.items():
                arrays[f"state/{k}/{sub}"] = np.asarray(to_numpy(a))
        else:
            meta[k] = v
    arrays["arch"] = np.array(json.dumps(model.arch))
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz_atomic(path, arrays)


def load_checkpoint(path, expect_arch: dict | None = None):
    """Load a model saved by `save`: returns (model, metadata).

    Raises CheckpointError naming the file when it is missing, damaged, not a minidet
    checkpoint, of another architecture than `expect_arch`, or its weights do not fit.
    """
    path = Path(path)
    if path.is_dir():
        hint = f" (it holds {path / 'last.npz'}: give that file)" if (path / "last.npz").is_file() else ""
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file{hint}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e.strerror or e})") from None
    if not magic.startswith(ZIP_MAGIC):
        # np.load would try it as a pickle and advise allow_pickle: say what it is instead.
        raise CheckpointError(f"{path}: not a .npz checkpoint ({_kind_of_file(magic)})")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: damaged or not a .npz checkpoint ({e})") from None
    if "arch" not in files or "meta" not in files:
        raise CheckpointError(f"{path}: not a minidet checkpoint (no architecture recorded)")
    try:
        arch = json.loads(str(files["arch"]))
        meta = json.loads(str(files["meta"]))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: damaged checkpoint header ({e})") from None
    if expect_arch is not None and arch != expect_arch:
        raise CheckpointError(f"{path}: checkpoint is a {_describe(arch)}, expected a {_describe(expect_arch)}")
    try:
        model = build(arch)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot rebuild its architecture: {e}") from None
    expected = {name: (params, key) for name, params, _, key in model.named_parameters()}
    _check_names(files, "param/", expected, "weights", path, arch)
    for name, (params, key) in expected.items():
        w = files[f"param/{name}"]
        if w.shape != params[key].shape or not np.issubdtype(w.dtype, np.floating):
            raise CheckpointError(f"{path}: weight {name} has shape {w.shape} {w.dtype}, "
                                  f"the architecture needs {params[key].shape}")
        if not np.all(np.isfinite(w)):
            raise CheckpointError(f"{path}: weight {name} holds non-finite values")
        params[key] = np.ascontiguousarray(w)
    _load_buffers(model, files, path, arch)
    for k, a in files.items():
        if k.startswith("state/"):
            _, group, sub = k.split("/", 2)
            meta.setdefault(group, {})[sub] = a
    return model, meta


def _check_names(files, prefix: str, expected, what: str, path, arch):
    """CheckpointError naming `what` unless the entries of `files` under `prefix` are exactly
    the names of `expected` (the architecture's)."""
    stored = {k[len(prefix):] for k in files if k.startswith(prefix)}
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        raise CheckpointError(f"{path}: {what} do not match {_describe(arch)} "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")


def _load_buffers(model, files, path, arch):
    """Restore `model`'s buffers (running statistics) from the "buffer/" entries of `files`."""
    expected = {name: (buffers, key) for name, buffers, key in model.named_buffers()}
    _check_names(files, "buffer/", expected, "running statistics", path, arch)
    for name, (buffers, key) in expected.items():
        b = files[f"buffer/{name}"]
        if b.shape != buffers[key].shape:
            raise CheckpointError(f"{path}: buffer {name} has shape {b.shape}, the architecture needs "
                                  f"{buffers[key].shape}")
        buffers[key] = np.array(b, dtype=buffers[key].dtype)  # not ascontiguousarray: it makes 0-d 1-d


def load(path):
    """Load a model saved by `save` (see `load_checkpoint` for the metadata too)."""
    return load_checkpoint(path)[0]


def _kind_of_file(magic: bytes) -> str:
    for start, kind in _MAGICS.items():
        if magic.startswith(start):
            return f"it is {kind}"
    if not magic:
        return "the file is empty"
    try:
        magic.decode("utf-8")
        return "it looks like a text file"
    except UnicodeDecodeError:
        return "it does not start as a zip archive"


def _describe(arch) -> str:
    kwargs = ", ".join(f"{k}={v}" for k, v in arch.get("kwargs", {}).items())
    return f"{arch.get('name')}({kwargs})"
