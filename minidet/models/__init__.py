"""Models of the YOLO v1 family and their checkpoints.

    yolo_v1(), fast_yolo(), reduced_fast_yolo(input_size, width)  → YoloModel
    ssd_lite(input_size, width, C)                                → SSDModel
    save(model, path, **metadata), load(path), load_checkpoint(path) → (model, metadata)
"""
from .checkpoint import load, load_checkpoint, save, write_npz_atomic
from .ssd import SSDModel, ssd_lite
from .summary import profile, summary
from .yolo import ARCHITECTURES, YoloModel, build, fast_yolo, reduced_fast_yolo, yolo_v1

__all__ = ["YoloModel", "yolo_v1", "fast_yolo", "reduced_fast_yolo", "build", "ARCHITECTURES",
           "save", "load", "load_checkpoint", "write_npz_atomic", "summary", "profile",
           "SSDModel", "ssd_lite"]
