"""Region proposals without a CNN: selective search and sliding windows, and their recall.

Boxes are pixel corners [x1, y1, x2, y2] (continuous: a box over columns 0…9 spans x 0 to 10).
"""
from .cache import cache_path, cached_proposals
from .grouping import Regions, group, initial_regions
from .recall import best_iou_at, proposal_recall, recall_study
from .segmentation import felzenszwalb
from .selective_search import hierarchy_boxes, selective_search
from .windows import sliding_windows

__all__ = ["felzenszwalb", "initial_regions", "group", "Regions", "hierarchy_boxes", "selective_search",
           "sliding_windows", "best_iou_at", "proposal_recall", "recall_study", "cached_proposals", "cache_path"]
