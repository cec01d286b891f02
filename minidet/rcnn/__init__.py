"""The R-CNN family's shared parts: box regression targets, the RoI sampling of the second
stage and its multi-task loss, the second stage's output and detections; R-CNN's warped
crops; Fast R-CNN's network; Faster R-CNN's anchors, RPN targets, RPN head and loss, proposal
layer, and the trainer's adapter (`task.py`). Boxes are pixel corners [x1, y1, x2, y2].

R-CNN's crop classifier and its training loop of `benchmarks/rcnn_study.py`
(`minidet.rcnn.classifier`) are imported by path: they build on `minidet.models`, which
builds its two-stage detectors on this package."""
from .anchors import RpnTargets, anchor_grid, anchor_shapes, rpn_targets
from .crops import context_boxes, warp_crops
from .deltas import STDS, decode_deltas, encode_deltas
from .detections import Detections, class_detections, split_outputs
from .fast_rcnn import FastRCNN, fast_rcnn
from .loss import MultiTaskLoss
from .proposal_layer import Proposals, propose
from .rpn_head import rpn_head, rpn_step, split_rpn_output
from .rpn_loss import RpnLoss, rpn_maps, rpn_rows
from .sampling import RoiSample, sample_rois

__all__ = ["warp_crops", "context_boxes", "encode_deltas", "decode_deltas", "STDS", "sample_rois", "RoiSample", "MultiTaskLoss", "split_outputs",
           "class_detections", "Detections", "anchor_grid", "anchor_shapes", "rpn_targets", "RpnTargets", "propose",
           "Proposals", "RpnLoss", "rpn_rows", "rpn_maps", "rpn_head", "split_rpn_output", "rpn_step", "FastRCNN",
           "fast_rcnn"]
