"""`metaloss.losses.get` and friends: every accepted identifier, and the errors."""

import json

import keras
import pytest

from metaloss import losses
from metaloss.losses import Baikal, CyclicClassEmphasis, TaylorGLO

from .zoo_cases import CONSTRUCTION, THETA


def test_construction_table_covers_the_whole_catalog():
    assert set(CONSTRUCTION) == set(losses.catalog())


@pytest.mark.parametrize("identifier", ["baikal", "Baikal", "metaloss>Baikal"])
def test_names_resolve(identifier):
    assert isinstance(losses.get(identifier), Baikal)


def test_spec_arguments_and_defaults():
    loss = losses.get(f"taylor_glo:theta={THETA}".replace(" ", ""), from_logits=True)
    assert isinstance(loss, TaylorGLO) and loss.theta == tuple(THETA) and loss.from_logits
    assert losses.get("baikal:from_logits=false", from_logits=True).from_logits is False
    cyclic = losses.get("cyclic:num_classes=3,period=10,amplitude=5,order=[2,1]")
    assert isinstance(cyclic, CyclicClassEmphasis) and cyclic.order == [2, 1]


def test_baselines_are_keras_own_losses():
    assert isinstance(losses.get("cross_entropy"), keras.losses.CategoricalCrossentropy)
    assert losses.get("cross_entropy", from_logits=True).get_config()["from_logits"] is True
    assert isinstance(
        losses.get("sparse_cross_entropy"), keras.losses.SparseCategoricalCrossentropy
    )
    assert isinstance(losses.get("mse", from_logits=True), keras.losses.MeanSquaredError)


def test_config_dict_and_keras_own_lookup():
    config = {"class_name": "metaloss>Baikal", "config": {"from_logits": True}}
    assert losses.get(config).from_logits is True
    assert isinstance(keras.losses.get({"class_name": "metaloss>Baikal", "config": {}}), Baikal)


def test_json_file_round_trip(tmp_path):
    original = TaylorGLO(THETA, from_logits=True)
    path = losses.save(original, tmp_path / "best_loss.json")
    assert json.loads(path.read_text())["registered_name"] == "metaloss>TaylorGLO"
    assert losses.get(str(path)).get_config() == original.get_config()
    assert losses.get(path).get_config() == original.get_config()


def test_loss_objects_and_callables_pass_through():
    loss = Baikal()
    assert losses.get(loss) is loss
    assert (
        losses.get(keras.losses.categorical_crossentropy) is keras.losses.categorical_crossentropy
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"argument `loss`.*'baikal'.*Received: loss='nope'"):
        losses.get("nope")


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        ("baikal:from_logits", "name:key=value"),
        ("baikal:bogus=1", "arguments that 'baikal' accepts"),
        ("missing.json", "an existing JSON file"),
        ("", "a loss name"),
        (3, "a loss name"),
        ({"config": {}}, "class_name"),
    ],
)
def test_bad_identifiers_are_value_errors(identifier, message):
    with pytest.raises(ValueError, match=message):
        losses.get(identifier)


def test_invalid_json_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="a JSON file holding a serialized loss"):
        losses.get(str(path))
