"""Cell-classification pretraining: its loss's gradient, and that it teaches the convolutions."""
from functools import partial

import numpy as np

from minidet.boxes import encode_targets
from minidet.data import BatchLoader, VOCDataset, generate
from minidet.gradcheck import numerical_gradient, worst
from minidet.models import reduced_fast_yolo
from minidet.pretrain import CellClassLoss, pretrain, trunk_of


def targets_for(seed, N=2, S=3, C=4):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N):
        boxes = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.6, 0.9, 0.95]])
        out.append(encode_targets(boxes, rng.integers(0, C, 2), S, C))
    return np.stack(out).astype(np.float64)


def test_cell_class_loss_gradient_every_entry():
    targets = targets_for(0)
    logits = np.random.default_rng(1).standard_normal((2, 4, 3, 3))
    loss = CellClassLoss()
    loss.forward(logits, targets)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: CellClassLoss().forward(logits, targets), logits)
    err, where = worst(analytic, numeric)
    assert err < 1e-7, f"{err:.2e} at {where}"
    # Cells without an object get no gradient.
    empty = targets[..., 4] < 0.5
    assert np.all(analytic.transpose(0, 2, 3, 1)[empty] == 0)


def test_cell_class_loss_value_and_accuracy_by_hand():
    targets = targets_for(2, N=1)
    logits = np.zeros((1, 4, 3, 3))
    loss = CellClassLoss()
    # Uniform logits: −log(1/4) per object cell, two object cells.
    assert abs(loss.forward(logits, targets) - 2 * np.log(4)) < 1e-12
    labels = targets[0, ..., 5:].argmax(-1)
    for i, j in zip(*np.nonzero(targets[0, ..., 4])):
        logits[0, labels[i, j], i, j] = 5.0
    loss.forward(logits, targets)
    assert loss.accuracy == 1.0


def test_pretraining_teaches_the_trunk_and_keeps_the_head_out(tmp_path):
    root = generate(tmp_path / "d", images=36, seed=0)
    ds = VOCDataset(root, "train")
    model = reduced_fast_yolo(56, 0.125, seed=0)
    before = {n: p[k].copy() for n, p, _, k in model.named_parameters()}
    loader = BatchLoader(ds, 8, 56, shuffle=True, drop_last=True, target_fn=partial(encode_targets, S=7, C=20))
    first = pretrain(model, loader, epochs=1, lr=1e-2, log=lambda *_: None)
    last = pretrain(model, loader, epochs=6, lr=1e-2, log=lambda *_: None)
    assert last["loss"] < first["loss"]
    trunk_names = {f"{i}.{k}" for i, layer in enumerate(trunk_of(model)) for k in layer.params}
    for name, p, _, k in model.named_parameters():
        changed = not np.array_equal(p[k], before[name])
        assert changed == (name in trunk_names), name  # the trunk moved, the FC head did not
    assert len(model.layers) == len(reduced_fast_yolo(56, 0.125).layers)  # no head left behind


class _Batch:
    def __init__(self, images, targets):
        self.images, self.targets = images, targets


class _FixedLoader:
    """`passes` yields one fixed batch; len() says how many batches a pass promises."""

    def __init__(self, batches, length=None):
        self.batches = batches
        self.length = len(batches) if length is None else length

    def __len__(self):
        return self.length

    def __iter__(self):
        return iter(self.batches)


def _one_batch(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((2, 3, 56, 56)).astype(np.float32)
    boxes = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.6, 0.9, 0.95]])
    targets = np.stack([encode_targets(boxes, np.array([1, 3]), 7, 20)] * 2).astype(np.float32)
    return _Batch(images, targets)


def test_pretraining_uses_the_runs_momentum_and_decay():
    """One step from the same start: the weight decay of the run changes the trunk's update."""
    trunks = []
    for decay in (0.0, 0.5):
        model = reduced_fast_yolo(56, 0.125, seed=0)
        pretrain(model, _FixedLoader([_one_batch()]), epochs=1, lr=1e-2, log=lambda *_: None,
                 momentum=0.0, weight_decay=decay)
        trunks.append([p[k].copy() for _, p, _, k in trunk_of(model).named_parameters()])
    assert any(not np.array_equal(a, b) for a, b in zip(*trunks))


def test_pretraining_stops_on_a_loader_without_batches():
    import pytest

    from minidet.errors import MinidetError

    model = reduced_fast_yolo(56, 0.125, seed=0)
    for loader in (_FixedLoader([]), _FixedLoader([], length=3)):  # empty, and one that promises batches
        with pytest.raises(MinidetError, match="no batch"):
            pretrain(model, loader, epochs=1, lr=1e-2, log=lambda *_: None)
