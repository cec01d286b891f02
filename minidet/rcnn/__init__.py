"""The R-CNN family's shared parts: box regression targets, the RoI sampling of the second
stage and its multi-task loss; Fast R-CNN's network; R-CNN itself (warped crops and their classifier); Faster R-CNN's
anchors, RPN targets, RPN head and loss, and proposal layer.
Boxes are pixel corners [x1, y1, x2, y2] (continuous)."""
from .anchors import RpnTargets, anchor_grid, anchor_shapes, rpn_targets
from .classifier import (CropBatch, Detections, crop_classifier, detect_image, split_outputs, train_step,
                         training_batch)
from .crops import context_boxes, warp_crops
from .deltas import STDS, decode_deltas, encode_deltas
from .fast_rcnn import FastRCNN, fast_rcnn
from .loss import MultiTaskLoss
from .proposal_layer import Proposals, propose
from .rpn_head import rpn_head, rpn_step, split_rpn_output
from .rpn_loss import RpnLoss, rpn_maps, rpn_rows
from .sampling import RoiSample, sample_rois

__all__ = ["warp_crops", "context_boxes", "encode_deltas", "decode_deltas", "STDS", "sample_rois", "RoiSample",
           "MultiTaskLoss", "crop_classifier", "split_outputs", "training_batch", "train_step", "detect_image",
           "CropBatch", "Detections", "anchor_grid", "anchor_shapes", "rpn_targets", "RpnTargets", "propose",
           "Proposals", "RpnLoss", "rpn_rows", "rpn_maps",
           "rpn_head", "split_rpn_output", "rpn_step", "FastRCNN", "fast_rcnn"]
