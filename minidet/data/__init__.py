"""Datasets, augmentation and batches.

voc     — `VOCDataset`: a dataset in PASCAL VOC layout (images (H, W, 3) uint8 RGB,
          boxes normalized [x1, y1, x2, y2]).
images  — `decode_image`: any image file as upright (H, W, 3) uint8 RGB, errors naming it.
coco, yolo_layout — `COCODataset`, `YOLODataset`: the COCO and YOLO layouts, same interface.
layouts — `open_dataset(root, split)`: the reader of the folder's layout.
convert, stats — `minidet data convert / stats / show`.
synth   — the built-in synthetic dataset (20 coloured shapes) written in VOC layout.
augment — the paper's augmentation and the plain resize to (3, size, size) float32.
loader  — `BatchLoader`: shuffled, augmented batches made by background threads.
"""
from .augment import AugmentConfig, augment, resize
from .loader import Batch, BatchLoader
from .synth import SYNTH_CLASSES, builtin_dataset, generate
from .voc import VOC_CLASSES, Annotation, Sample, VOCDataset, decode_image, read_classes
from .coco import COCODataset
from .yolo_layout import YOLODataset
from .layouts import dataset_classes, detect_layout, open_dataset

__all__ = [
    "VOC_CLASSES", "VOCDataset", "Annotation", "Sample", "read_classes", "decode_image",
    "SYNTH_CLASSES", "generate", "builtin_dataset",
    "AugmentConfig", "augment", "resize",
    "BatchLoader", "Batch",
    "COCODataset", "YOLODataset", "open_dataset", "detect_layout", "dataset_classes",
]
