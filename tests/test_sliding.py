"""Sliding windows (chapter 0): windows, crops, the window frame, the loss and its gradient."""
import numpy as np
import pytest

from minidet.boxes import box_iou, greedy_merge, nms
from minidet.data import VOCDataset, generate
from minidet.gradcheck import gradcheck, numerical_gradient, worst
from minidet.sliding import (WindowLoss, best_window_iou, classify_windows, count_windows, crop_resize,
                             flops_per_window, from_window_frame, labelled_crops, per_class, sliding_windows,
                             softmax, to_window_frame, window_classifier, window_sizes)
from minidet.testing import assert_close


def test_window_sizes():
    assert window_sizes(16, 96, 1) == [16]
    assert window_sizes(16, 64, 3) == [16, 32, 64]
    with pytest.raises(ValueError, match="window_sizes"):
        window_sizes(32, 16, 2)


def test_sliding_windows_by_hand():
    # An 8-pixel image, windows of 4 with stride 2: offsets 0, 2, 4 → 3 × 3 windows.
    w = sliding_windows(8, [4], stride_fraction=0.5)
    assert w.shape == (9, 4)
    assert_close(w[0], [0, 0, 0.5, 0.5], rtol=0)
    assert_close(w[1], [0.25, 0, 0.75, 0.5], rtol=0)   # x moves first, then y
    assert_close(w[-1], [0.5, 0.5, 1, 1], rtol=0)
    assert len(sliding_windows(8, [16])) == 0           # larger than the image: skipped
    assert_close((w[:, 2] - w[:, 0]) * 8, np.full(9, 4.0), rtol=0)


@pytest.mark.parametrize("size,sizes,frac", [(128, [16, 32, 64], 0.25), (100, [7, 30, 99, 100, 130], 0.1),
                                             (64, [64], 0.5), (50, [3], 0.01)])
def test_count_windows_matches_the_enumeration(size, sizes, frac):
    assert count_windows(size, sizes, frac) == len(sliding_windows(size, sizes, frac))


def test_finer_strides_and_more_scales_cost_more_and_localise_better():
    truths = np.array([[0.13, 0.21, 0.41, 0.47], [0.6, 0.55, 0.95, 0.9], [0.05, 0.7, 0.2, 0.85]])
    coarse = sliding_windows(128, window_sizes(16, 96, 2), 0.5)
    fine = sliding_windows(128, window_sizes(16, 96, 6), 0.125)
    assert len(fine) > 10 * len(coarse)
    assert best_window_iou(fine, truths).mean() > best_window_iou(coarse, truths).mean()
    assert_close(best_window_iou(fine, truths), box_iou(fine, truths).max(axis=0), rtol=0)
    assert best_window_iou(np.zeros((0, 4)), truths).tolist() == [0, 0, 0]


def test_crop_resize_is_exact_on_pixel_aligned_boxes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    whole = crop_resize(image, [[0, 0, 1, 1]], 12)  # height 12: rows exact, columns resampled
    assert whole.shape == (1, 3, 12, 12) and whole.dtype == np.float32
    # The 4×4 block at rows 2..5, columns 8..11, cut at its own size: the pixels themselves.
    box = [[8 / 16, 2 / 12, 12 / 16, 6 / 12]]
    crop = crop_resize(image, box, 4)
    assert_close(crop[0], image[2:6, 8:12].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    full = crop_resize(image, [[0, 0, 1, 1]], 16)
    assert_close(full[0, :, :, :], _resample_rows(image), rtol=1e-5, atol=1e-6)


def _resample_rows(image):
    """The whole 12×16 image at 16×16: columns unchanged, rows linearly interpolated (reference)."""
    img = image.astype(np.float64) / 255
    ys = np.clip((np.arange(16) + 0.5) * 12 / 16 - 0.5, 0, 11)
    y0 = np.minimum(np.floor(ys).astype(int), 10)
    f = ys - y0
    out = img[y0] * (1 - f)[:, None, None] + img[y0 + 1] * f[:, None, None]
    return out.transpose(2, 0, 1)


def test_crop_resize_repeats_the_border_outside_the_image():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    crop = crop_resize(image, [[-0.5, -0.5, 1.5, 1.5]], 6)
    assert_close(crop, np.full((1, 3, 6, 6), 200 / 255), rtol=1e-6)


def test_window_frame_round_trip():
    rng = np.random.default_rng(1)
    corner = rng.random((5, 2))
    windows = np.concatenate([corner, corner + rng.uniform(0.1, 0.5, (5, 2))], axis=1)
    boxes = rng.random((5, 4))
    assert_close(from_window_frame(to_window_frame(boxes, windows), windows), boxes, rtol=1e-12, atol=1e-12)
    assert_close(to_window_frame(windows, windows), np.tile([0.0, 0, 1, 1], (5, 1)), rtol=0, atol=1e-12)


def test_window_loss_gradient_and_value():
    rng = np.random.default_rng(0)
    C = 4
    out = rng.standard_normal((6, C + 5))
    labels = np.array([0, 1, 2, 3, 4, 4])  # two backgrounds: no box term
    boxes = rng.random((6, 4))
    loss = WindowLoss(C, lambda_box=2.0)
    value = loss.forward(out, labels, boxes)
    p = softmax(out[:, :C + 1])
    cls = -np.log(p[np.arange(6), labels]).sum() / 6
    box = 2.0 * ((out[:4, C + 1:] - boxes[:4]) ** 2).sum() / 6
    assert_close(value, cls + box, rtol=1e-12)
    assert_close([loss.components["cls"], loss.components["box"]], [cls, box], rtol=1e-12)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: WindowLoss(C, lambda_box=2.0).forward(out, labels, boxes), out)
    assert worst(analytic, numeric)[0] < 1e-7
    assert_close(softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]], rtol=0)  # no overflow


def test_window_classifier_shapes_flops_and_gradient():
    model = window_classifier(num_classes=3, size=8, width=2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((2, 3, 8, 8))
    assert model.forward(x.astype(np.float32)).shape == (2, 3 + 5)
    # conv 8×8×2×27 + 4×4×4×18 + 2×2×8×36, then Linear 8→8; ×2 for multiply-add.
    assert flops_per_window(model, 8) == 2 * (64 * 2 * 27 + 16 * 4 * 18 + 4 * 8 * 36 + 8 * 8)
    model.layers[0].need_input_grad = True
    assert gradcheck(model, x + 0.01, check_input=False).passed(1e-6)
    with pytest.raises(ValueError, match="divisible by 8"):
        window_classifier(3, size=12)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("synth"), images=12, seed=3, image_size=64)
    return VOCDataset(root, "train")


def test_labelled_crops_follow_the_iou_rules(tiny_dataset):
    ds = tiny_dataset
    C = len(ds.classes)
    crops = labelled_crops(ds, range(len(ds)), 16, np.random.default_rng(0), per_object=2, backgrounds=2)
    n_objects = sum(len(a.boxes) for a in ds.annotations)
    pos = crops.labels < C
    assert pos.sum() == 2 * n_objects
    assert crops.images.shape == (len(crops.labels), 3, 16, 16) and crops.images.dtype == np.float32
    assert 0 <= crops.images.min() and crops.images.max() <= 1
    for k in range(len(crops.labels)):
        ann = ds.annotations[crops.source[k]]
        iou = box_iou(crops.windows[k:k + 1], ann.boxes)[0]
        if pos[k]:
            truth = from_window_frame(crops.boxes[k:k + 1], crops.windows[k:k + 1])[0]
            j = int(np.argmin(np.abs(ann.boxes - truth).sum(axis=1)))
            assert_close(truth, ann.boxes[j], rtol=0, atol=1e-5)     # the box target is that object's box
            assert crops.labels[k] == ann.labels[j]
            w = crops.windows[k]
            assert abs((w[2] - w[0]) - (w[3] - w[1])) < 1e-12            # square
        else:
            assert iou.max() < 0.3 and not crops.boxes[k].any()
    again = labelled_crops(ds, range(len(ds)), 16, np.random.default_rng(0), per_object=2, backgrounds=2)
    assert np.array_equal(again.images, crops.images)                    # deterministic for a seed


def test_labelled_crops_can_warp_windows_of_the_objects_shape(tiny_dataset):
    """square=False: R-CNN's warp — each object window has its object's aspect ratio."""
    ds = tiny_dataset
    C = len(ds.classes)
    warped = labelled_crops(ds, range(len(ds)), 16, np.random.default_rng(0), per_object=2, backgrounds=2,
                            square=False)
    pos = warped.labels < C
    assert pos.sum() == 2 * sum(len(a.boxes) for a in ds.annotations)
    truth = from_window_frame(warped.boxes[pos], warped.windows[pos])
    w = warped.windows[pos]
    aspect_window = (w[:, 2] - w[:, 0]) / (w[:, 3] - w[:, 1])
    aspect_truth = (truth[:, 2] - truth[:, 0]) / (truth[:, 3] - truth[:, 1])
    assert_close(aspect_window, aspect_truth, rtol=1e-6, atol=0)
    assert (np.abs(aspect_truth - 1) > 0.05).any()                       # the data has non-square objects
    for window, box in zip(w, truth):                                    # each window overlaps its object
        assert box_iou(window[None], box[None])[0, 0] >= 0.5 - 1e-12
    bg = ~pos
    assert np.allclose(warped.windows[bg, 2] - warped.windows[bg, 0], warped.windows[bg, 3] - warped.windows[bg, 1])


def test_classify_windows_and_per_class(tiny_dataset):
    ds = tiny_dataset
    C = len(ds.classes)
    model = window_classifier(C, size=8, width=2, rng=np.random.default_rng(0))
    # Make every window "class 5" with probability ~1 and box = the window's centre half.
    head = model.layers[-1]
    head.params["W"][...] = 0
    head.params["b"][...] = 0
    head.params["b"][5] = 20.0
    head.params["b"][C + 1:] = [0.25, 0.25, 0.75, 0.75]
    windows = sliding_windows(64, [32], 0.5)
    det = classify_windows(model, ds.image(0), windows, 8, score_threshold=0.5, batch_size=4)
    assert len(det.windows) == len(windows) and (det.labels == 5).all() and (det.scores > 0.99).all()
    w = windows
    expected = np.stack([w[:, 0] + 0.25 * (w[:, 2] - w[:, 0]), w[:, 1] + 0.25 * (w[:, 3] - w[:, 1]),
                         w[:, 0] + 0.75 * (w[:, 2] - w[:, 0]), w[:, 1] + 0.75 * (w[:, 3] - w[:, 1])], 1)
    assert_close(det.boxes, expected, rtol=1e-6, atol=1e-6)
    head.params["b"][5] = 0.0
    head.params["b"][C] = 20.0  # now everything is background
    assert len(classify_windows(model, ds.image(0), windows, 8).windows) == 0
    # per_class: each class reduced on its own, results by descending score.
    boxes = np.array([[0, 0, 0.5, 0.5], [0.01, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]])
    scores, labels = np.array([0.9, 0.8, 0.7]), np.array([1, 1, 2])
    b, s, lab = per_class(boxes, scores, labels, lambda bb, ss: greedy_merge(bb, ss, 0.5))
    assert_close(s, [1.7, 0.7], rtol=1e-12)
    assert lab.tolist() == [1, 2]
    b, s, lab = per_class(boxes, scores, labels, lambda bb, ss: (bb[nms(bb, ss, 0.5)], ss[nms(bb, ss, 0.5)]))
    assert_close(s, [0.9, 0.7], rtol=0)
    assert lab.tolist() == [1, 2]
    assert per_class(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), None)[0].shape == (0, 4)
