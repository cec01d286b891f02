"""Models of the YOLO v1 family and their checkpoints.

    yolo_v1(), fast_yolo(), reduced_fast_yolo(input_size, width)  → YoloModel
    ssd_lite(input_size, width, C)                                → SSDModel
    faster_rcnn(input_size, width, C)                             → FasterRCNN
    fast_rcnn_ss(input_size, width, C)                            → SelectiveSearchFastRCNN
    crop_rcnn(input_size, width, C)                               → CropRCNN
    save(model, path, **metadata), load(path), load_checkpoint(path) → (model, metadata)
"""
from .checkpoint import load, load_checkpoint, save, write_npz_atomic
from .ssd import SSDModel, ssd_lite
from .faster_rcnn import FasterRCNN, faster_rcnn
from .fast_rcnn_ss import SelectiveSearchFastRCNN, fast_rcnn_ss
from .crop_rcnn import CropRCNN, crop_rcnn
from .summary import profile, summary
from .yolo import ARCHITECTURES, YoloModel, build, fast_yolo, reduced_fast_yolo, yolo_v1
from .darknet import darknet_model, import_darknet
from .state_dict import load_state_dict, state_dict

# Networks read from darknet cfg files rebuild from the layer list their checkpoint stores.
ARCHITECTURES["darknet"] = darknet_model

__all__ = ["YoloModel", "yolo_v1", "fast_yolo", "reduced_fast_yolo", "build", "ARCHITECTURES",
           "darknet_model", "import_darknet", "state_dict", "load_state_dict",
           "save", "load", "load_checkpoint", "write_npz_atomic", "summary", "profile",
           "SSDModel", "ssd_lite", "FasterRCNN", "faster_rcnn",
           "SelectiveSearchFastRCNN", "fast_rcnn_ss", "CropRCNN", "crop_rcnn"]
