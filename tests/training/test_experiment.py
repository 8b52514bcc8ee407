"""`train_experiment`: data, model, loss and trainer end to end, with its files."""

import json

import keras
import numpy as np

from metaloss import losses
from metaloss.data import load
from metaloss.training import train_experiment


def test_experiment_writes_files_that_reload(tmp_path):
    result = train_experiment(
        "spiral",
        "mlp:hidden=[32]",
        "taylor_glo_reference",
        epochs=3,
        seed=1,
        output=tmp_path,
        batch_size=32,
        learning_rate=0.05,
    )
    assert (result.epochs, result.status) == (3, "completed")
    assert len(result.history["val_accuracy"]) == 3
    assert 0.0 <= result.test_accuracy <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test_accuracy"] == result.test_accuracy
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.loss.get_config() == losses.get(tmp_path / "loss.json").get_config()
    # The reloaded model scores the test split as the run reported.
    x, y = load("spiral", seed=1).arrays("test")
    accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))
    assert accuracy == result.test_accuracy


def test_same_seed_same_result_and_resume_of_a_finished_run(tmp_path):
    kwargs = {"epochs": 2, "seed": 4, "batch_size": 64}
    first = train_experiment("digits", "mlp", "baikal", output=tmp_path, resume=True, **kwargs)
    second = train_experiment("digits", "mlp", "baikal", **kwargs)
    assert first.history == second.history
    resumed = train_experiment("digits", "mlp", "baikal", output=tmp_path, resume=True, **kwargs)
    assert resumed.steps == first.steps and resumed.history == first.history
