"""The detector-family registry: one entry makes a `--model`, with its model, loss, settings
check and learning rate; an unknown name is refused naming the registered ones."""
import pytest

from minidet.cli import build_parser
from minidet.errors import MinidetError
from minidet.families import FAMILIES, Family, family_for
from minidet.loss import YoloLoss
from minidet.train import TrainConfig, head_for, loss_and_targets, model_for


def test_unknown_model_is_refused_naming_every_family():
    with pytest.raises(MinidetError, match=r"^--model must be reduced, fast, yolo, ssd, faster, fast-rcnn or rcnn, got 'nope'$"):
        family_for("nope")
    with pytest.raises(MinidetError, match="--model must be"):
        model_for(TrainConfig(model="nope"), 3)


def test_each_family_gives_its_default_learning_rate():
    for name, family in FAMILIES.items():
        assert TrainConfig(model=name).lr == family.lr
    assert TrainConfig(model="ssd").lr != TrainConfig(model="reduced").lr
    assert TrainConfig(model="ssd", lr=0.5).lr == 0.5


def test_one_registration_makes_a_model(monkeypatch):
    def arch(config, C):
        return {"name": "reduced_fast_yolo", "kwargs": dict(input_size=56, width=0.0625, S=7, B=2, C=C,
                                                            seed=config.seed, head="conv")}

    def resolve(config):
        if config.pretrain_epochs:
            raise MinidetError("--pretrain-epochs applies to the YOLO models")
        return {"head": None}

    toy = Family("toy", arch, lambda config, model: ("loss", "targets"), resolve, lr=0.125)
    monkeypatch.setitem(FAMILIES, "toy", toy)
    assert build_parser().parse_args(["train", "--model", "toy"]).model == "toy"
    config = TrainConfig(model="toy")
    assert config.lr == 0.125 and head_for(config) is None
    assert model_for(config, 3).arch["kwargs"]["C"] == 3
    assert loss_and_targets(config, None) == ("loss", "targets")
    with pytest.raises(MinidetError, match="--pretrain-epochs"):
        head_for(TrainConfig(model="toy", pretrain_epochs=1))


def test_yolo_family_loss_and_targets():
    config = TrainConfig(input_size=56, width=0.0625, lambda_coord=3.0)
    model = model_for(config, 4)
    loss, target_fn = loss_and_targets(config, model)
    assert isinstance(loss, YoloLoss) and loss.lambda_coord == 3.0 and loss.C == 4
    assert target_fn([[0.1, 0.1, 0.5, 0.5]], [2]).shape == (7, 7, 9)
