"""predict / evaluate_loader / drawing: what the CLI and the notebooks print and show."""
import numpy as np

from minidet.boxes import encode_targets
from minidet.data import BatchLoader, VOCDataset, generate
from minidet.inference import evaluate_loader, predict
from minidet.models import reduced_fast_yolo
from minidet.visualize import detection_sheet, draw_detections


class Oracle:
    """A stand-in model whose output is the encoded truth: its detections must score mAP 1."""

    S, B, C, input_size, training = 7, 2, 20, 56, False

    def __init__(self, dataset):
        self.dataset = dataset
        self.queue = []

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def forward(self, images):
        out = []
        for _ in range(len(images)):
            boxes, labels = self.queue.pop(0)
            t = encode_targets(boxes, labels, 7, 20)
            cell = np.zeros((7, 7, 30), np.float32)
            cell[..., 0:2] = t[..., 0:2]
            cell[..., 2:4] = np.sqrt(t[..., 2:4])
            cell[..., 4] = t[..., 4]
            cell[..., 10:] = t[..., 5:]
            out.append(cell)
        return np.stack(out)


def test_a_perfect_model_scores_map_one(tmp_path):
    root = generate(tmp_path / "d", images=24, seed=1)
    ds = VOCDataset(root, "train")
    # Keep one object per cell, as the grid can only hold that many.
    oracle = Oracle(ds)
    keep = []
    for a in ds.annotations:
        largest = {}  # cell -> index of the largest object centred in it
        areas = (a.boxes[:, 2] - a.boxes[:, 0]) * (a.boxes[:, 3] - a.boxes[:, 1])
        for k, b in enumerate(a.boxes):
            cell = (min(int((b[0] + b[2]) / 2 * 7), 6), min(int((b[1] + b[3]) / 2 * 7), 6))
            if cell not in largest or areas[k] > areas[largest[cell]]:
                largest[cell] = k
        keep.append(sorted(largest.values()))
        oracle.queue.append((a.boxes[keep[-1]], a.labels[keep[-1]]))
    truths = [(a.boxes[k], a.labels[k], a.difficult[k]) for a, k in zip(ds.annotations, keep)]
    images = np.zeros((len(ds), 3, 56, 56), np.float32)
    dets = predict(oracle, images)
    from minidet.eval import evaluate

    assert evaluate(dets, truths)["mAP"] > 0.99


def test_predict_restores_training_mode_and_evaluate_loader_runs(tmp_path):
    """evaluate_loader runs the model in eval mode (the fully connected head's dropout off:
    the detections are exactly those of the model put in eval mode by hand, and the same on
    a second pass), scores them with `evaluate`, and leaves every layer in training mode."""
    from minidet.eval import evaluate
    from minidet.inference import EVAL_SCORE_THRESHOLD

    root = generate(tmp_path / "d", images=24, seed=2)
    model = reduced_fast_yolo(56, 0.0625, head="fc")
    assert any(type(layer).__name__ == "Dropout" for layer in model.layers)
    head = [layer for layer in model.layers if "b" in layer.params][-1]
    head.params["b"][...] = 0.5  # positive confidences and class scores: many detections to compare
    dataset = VOCDataset(root, "val")
    model.train()
    with BatchLoader(dataset, 4, 56) as loader:
        result, dets, truths = evaluate_loader(model, loader)
        again = evaluate_loader(model, loader)[1]
        assert model.training and all(layer.training for layer in model.layers)
        model.eval()
        by_hand = [d for batch in loader for d in predict(model, batch.images, score_threshold=EVAL_SCORE_THRESHOLD)]
    assert len(dets) == len(truths) == len(dataset) == len(by_hand)
    assert sum(len(d[1]) for d in dets) > 10 * len(dets)
    for got, second, want in zip(dets, again, by_hand):
        for a, b, c in zip(got, second, want):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, c)
    assert result == evaluate(by_hand, truths, num_classes=model.C)


def test_drawing_puts_boxes_where_they_belong():
    image = np.zeros((3, 40, 60), np.float32)
    img = draw_detections(image, np.array([[0.25, 0.5, 0.75, 0.9]]), np.array([3]), np.array([0.9]))
    a = np.asarray(img)
    assert a.shape == (40, 60, 3)
    assert a[36, 30].any() and a[35:37, 15:45].any()  # bottom edge at y = 0.9·40 = 36
    assert not a[:8, 30].any() and not a[24:34, 30].any()  # nothing above the label, nothing inside
    sheet = detection_sheet([image] * 3, [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))] * 3, columns=2, scale=1)
    assert sheet.size == (120, 80)
