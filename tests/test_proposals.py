"""Proposals: the segmentation and the grouping on hand-made images with a known answer,
the ranking, the sliding windows, and proposal recall."""
import numpy as np
import pytest

from minidet.proposals import (best_iou_at, felzenszwalb, group, hierarchy_boxes, initial_regions, proposal_recall,
                               recall_study, selective_search, sliding_windows)
from minidet.proposals.grouping import similarity
from minidet.proposals.segmentation import gaussian_smooth, neighbour_edges

RED, BLUE, GREEN = (200, 30, 30), (30, 30, 200), (30, 180, 40)


def two_halves(H=20, W=30, split=12):
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :split], img[:, split:] = RED, BLUE
    return img


def test_segmentation_finds_two_flat_regions():
    labels = felzenszwalb(two_halves(), k=100, sigma=0.0, min_size=5)
    assert (labels[:, :12] == 0).all() and (labels[:, 12:] == 1).all()


def test_smoothing_strips_below_min_size_join_a_side():
    # Blurring makes a few columns of in-between colours at the border; with min_size above a
    # column's 20 pixels they merge into a side, and the two halves stay apart.
    labels = felzenszwalb(two_halves(), k=100, sigma=0.8, min_size=25)
    assert labels.max() == 1
    assert (labels[:, :10] == 0).all() and (labels[:, 14:] == 1).all()


def test_scale_k_merges_weak_edges_but_not_strong_ones():
    img = two_halves()
    img[:, 12:] = (200, 30, 40)  # a 10-unit edge
    assert felzenszwalb(img, k=5000, sigma=0.0, min_size=1).max() == 0
    assert felzenszwalb(img, k=1, sigma=0.0, min_size=1).max() == 1
    assert felzenszwalb(two_halves(), k=100, sigma=0.0, min_size=1).max() == 1  # a 240-unit edge holds


def test_min_size_removes_a_speck():
    img = two_halves()
    img[3:5, 3:5] = GREEN  # 4 pixels
    assert felzenszwalb(img, k=100, sigma=0.0, min_size=1).max() == 2
    labels = felzenszwalb(img, k=100, sigma=0.0, min_size=5)
    assert labels.max() == 1 and (labels[3:5, 3:5] == 0).all()


def test_edges_cover_each_8_neighbour_pair_once():
    a, b, w = neighbour_edges(np.zeros((3, 4, 3)))
    H, W = 3, 4
    expected = H * (W - 1) + (H - 1) * W + 2 * (H - 1) * (W - 1)
    pairs = {tuple(sorted(p)) for p in zip(a.tolist(), b.tolist())}
    assert len(a) == expected == len(pairs)
    assert all(abs(p // W - q // W) <= 1 and abs(p % W - q % W) <= 1 for p, q in pairs)


def test_gaussian_smoothing_keeps_flat_images_and_sums():
    flat = np.full((6, 7, 3), 77.0)
    np.testing.assert_allclose(gaussian_smooth(flat, 1.5), flat)
    spike = np.zeros((21, 21, 3))
    spike[10, 10] = 1.0
    out = gaussian_smooth(spike, 1.0)
    assert abs(out.sum() - 3.0) < 1e-12 and out[10, 10, 0] == out.max() and out[10, 11, 0] == out[11, 10, 0]


def test_initial_regions_sizes_boxes_histograms_and_neighbours():
    img = two_halves()
    img[14:, :] = GREEN  # bottom strip: red top-left, blue top-right, green bottom
    labels = felzenszwalb(img, k=100, sigma=0.0, min_size=1)
    r = initial_regions(img, labels)
    assert r.size.tolist() == [14 * 12, 14 * 18, 6 * 30]
    assert r.box.tolist() == [[0, 0, 12, 14], [12, 0, 30, 14], [0, 14, 30, 20]]
    np.testing.assert_allclose(r.hist.sum(axis=1), 1.0)  # the 75 bins of the three channels together
    assert r.neighbours == [{1, 2}, {0, 2}, {0, 1}]


def test_grouping_merges_into_the_union_box():
    img = two_halves()
    img[14:, :] = GREEN
    labels = felzenszwalb(img, k=100, sigma=0.0, min_size=1)
    regions, merges = group(initial_regions(img, labels), float(labels.size))
    boxes = regions.box
    assert len(boxes) == 5 and len(merges) == 2
    assert boxes[-1].tolist() == [0, 0, 30, 20]
    # Red and blue fill their union box (the top 14 rows: fill 1) and share green = 30 (colour
    # 1/3): 1/3 + 0.3 + 1 beats green with red (0 + 0.42 + 0.58) and with blue (1/3 + 0.28 + 0.72).
    assert merges[0].tolist() == [0, 1] and boxes[3].tolist() == [0, 0, 30, 14]


def test_a_merged_region_holds_the_size_and_histogram_of_its_pixels():
    img = np.random.default_rng(1).integers(0, 256, (4, 6, 3)).repeat(3, axis=0).repeat(3, axis=1).astype(np.uint8)
    labels = felzenszwalb(img, k=1, sigma=0.0, min_size=1)
    regions, merges = group(initial_regions(img, labels), float(labels.size))
    members = {i: {i} for i in range(labels.max() + 1)}
    for t, (a, b) in enumerate(merges, start=labels.max() + 1):
        members[t] = members[a] | members[b]
    for t in (labels.max() + 1, labels.max() + 5, len(regions.size) - 1):
        mask = np.isin(labels, list(members[t]))
        alone = initial_regions(img, mask.astype(np.int64))  # region 1 is the merged one
        assert regions.size[t] == mask.sum()
        np.testing.assert_allclose(regions.hist[t], alone.hist[1], atol=1e-12)
        np.testing.assert_array_equal(regions.box[t], alone.box[1])


def test_fill_prefers_regions_that_fill_their_box():
    # A top-left, B top-right (25 pixels each), C the bottom half (50): A and B fill their
    # union box; B's and C's box is the whole image, a quarter of it in neither.
    img = np.zeros((10, 10, 3), np.uint8)
    img[:5, :5], img[:5, 5:], img[5:, :] = RED, BLUE, GREEN
    labels = felzenszwalb(img, k=100, sigma=0.0, min_size=1)
    r = initial_regions(img, labels)
    assert similarity(r, 0, 1, 100.0, ("fill",)) == 1.0
    assert similarity(r, 1, 2, 100.0, ("fill",)) == 1.0 - (100 - 25 - 50) / 100


def test_selective_search_is_deterministic_ranked_and_finds_an_object():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:] = (120, 120, 120)
    img[10:22, 15:30] = RED
    a = selective_search(img, seed=3)
    b = selective_search(img, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a, axis=0)) == len(a)
    assert (a[:, :2] >= 0).all() and (a[:, 2] <= 40).all() and (a[:, 3] <= 40).all()
    assert best_iou_at(a, [[15, 10, 30, 22]], [len(a)])[0, 0] == 1.0
    assert len(selective_search(img, max_proposals=2)) == 2


def test_ranking_puts_large_regions_first_on_average():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).repeat(5, axis=0).repeat(5, axis=1).astype(np.uint8)
    boxes = selective_search(img, seed=0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    half = len(boxes) // 2
    assert len(boxes) > 50 and area[:half].mean() > 2 * area[half:].mean()
    # The whole image is at position 1 of each of the six hierarchies: it comes out near the top.
    for seed in range(5):
        assert selective_search(img, seed=seed).tolist().index([0, 0, 40, 40]) < 12


def test_hierarchy_ends_with_the_whole_image():
    img = two_halves()
    assert hierarchy_boxes(img, k=100)[0].tolist()[-1] == [0, 0, 30, 20]


def test_sliding_windows_inside_the_image_unique_and_seeded():
    w = sliding_windows(64, 48, sides=(0.25, 0.5, 1.0), ratios=(0.5, 1.0, 2.0))
    assert (w[:, 0] >= 0).all() and (w[:, 1] >= 0).all() and (w[:, 2] <= 64).all() and (w[:, 3] <= 48).all()
    assert len(np.unique(w, axis=0)) == len(w)
    assert [0, 0, 48, 48] in w.tolist()  # side 1.0 of the shorter side, ratio 1
    np.testing.assert_array_equal(w, sliding_windows(64, 48, sides=(0.25, 0.5, 1.0), ratios=(0.5, 1.0, 2.0)))
    assert not np.array_equal(w, sliding_windows(64, 48, sides=(0.25, 0.5, 1.0), ratios=(0.5, 1.0, 2.0), seed=1))
    with pytest.raises(ValueError, match="sliding_windows"):
        sliding_windows(0, 10)


def test_best_iou_at_takes_the_first_n_proposals():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    props = [[50, 50, 60, 60], [0, 0, 10, 20], [20, 20, 30, 30], [0, 0, 10, 10]]
    best = best_iou_at(props, gt, [0, 1, 2, 3, 4, 100])
    assert best.tolist() == [[0, 0, 0.5, 0.5, 1, 1], [0, 0, 0, 1, 1, 1]]
    assert best_iou_at(np.zeros((0, 4)), gt, [5]).tolist() == [[0], [0]]


def test_proposal_recall_counts_ground_truths_over_images():
    gts = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[5, 5, 15, 15]]), np.zeros((0, 4))]
    props = [np.array([[0, 0, 10, 12], [20, 20, 30, 30]]), np.array([[5, 5, 15, 25]]), np.array([[0, 0, 1, 1]])]
    r = proposal_recall(props, gts, [1, 2], thresholds=(0.5, 0.9))
    # IoUs: image 0: 10/12 (first gt) then 1.0 (second); image 1: 100/200, exactly the threshold.
    assert r[0.5].tolist() == [2 / 3, 1.0] and r[0.9].tolist() == [0, 1 / 3]
    with pytest.raises(ValueError, match="2 proposal lists for 3 images"):
        proposal_recall(props[:2], gts, [1])


def test_recall_study_scales_boxes_to_pixels_and_times_the_method():
    from types import SimpleNamespace

    samples = [SimpleNamespace(image=np.zeros((50, 100, 3), np.uint8), boxes=np.array([[0.1, 0.2, 0.5, 0.6]])),
               SimpleNamespace(image=np.zeros((50, 100, 3), np.uint8), boxes=np.array([[0.0, 0.0, 1.0, 1.0]]))]
    ticks = iter([0.0, 2.0, 10.0, 11.0])  # the method takes 2 s, then 1 s

    def propose(image):
        return [[10, 10, 50, 30], [0, 0, 100, 50], [0, 0, 1, 1]]  # the first is image 0's box in pixels

    r = recall_study(propose, samples, [1, 2, 3], thresholds=(0.5,), clock=lambda: next(ticks))
    assert r["recall"][0.5].tolist() == [0.5, 1.0, 1.0]
    assert r["images"] == 2 and r["objects"] == 2 and r["mean_proposals"] == 3.0 and r["seconds_per_image"] == 1.5
