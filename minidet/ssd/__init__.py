"""SSD (Liu et al. 2016): multi-scale default boxes, matching, the multibox loss, detection.

    default_boxes(feature_sizes, scales, aspect_ratios)  → priors (A, 4) [cx, cy, w, h]
    match(truths, labels, priors)                         → (loc_t (A, 4), conf_t (A,))
    MultiboxLoss(neg_pos_ratio=3.0, alpha=1.0)            forward / backward
    detect(loc, conf, priors)                             → [(boxes, scores, labels)] per image
The model is `minidet.models.ssd_lite`; `minidet.ssd.task` adapts it to the trainer.
"""
from .detect import detect
from .loss import MultiboxLoss, background_loss, hard_negatives
from .match import VARIANCES, decode_offsets, encode_offsets, match
from .priors import boxes_per_cell, default_boxes

__all__ = ["default_boxes", "boxes_per_cell", "match", "encode_offsets", "decode_offsets", "VARIANCES",
           "MultiboxLoss", "background_loss", "hard_negatives", "detect"]
