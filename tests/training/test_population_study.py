"""population_runs: every (loss, seed) run equals train_experiment's run of it, files included.

The reference is an independent computation: `train_experiment`, one Trainer per run.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import metaloss
from metaloss.training import ExperimentResult, population_runs, train_experiment
from metaloss.training import population_study as study_module

SETTINGS = {"epochs": 3, "batch_size": 64, "subset_fraction": 0.5}
LOSSES = {"ce": "cross_entropy", "baikal": "baikal"}


def test_each_run_equals_train_experiment_and_writes_its_files(tmp_path):
    runs = population_runs("spiral", "mlp:hidden=[16]", LOSSES, [3, 5], tmp_path, **SETTINGS)
    for label, loss in LOSSES.items():
        for seed, record in zip([3, 5], runs[label], strict=True):
            alone = train_experiment(
                "spiral", "mlp:hidden=[16]", loss, seed=seed, verbose=0, **SETTINGS
            )
            assert record.seed == seed and record.loss == loss
            assert record.test_accuracy == pytest.approx(alone.test_accuracy, abs=1e-6)
            assert record.test_loss == pytest.approx(alone.test_loss, rel=1e-4)
            for key, values in alone.history.items():
                np.testing.assert_allclose(record.history[key], values, rtol=1e-4, atol=1e-5)
            where = tmp_path / label / f"seed{seed}"
            assert ExperimentResult.load(where).test_accuracy == record.test_accuracy
            assert json.loads((where / "loss.json").read_text())["class_name"]
            # The saved model is the replica's: its test accuracy, by NumPy, is the record's.
            reloaded = keras.saving.load_model(where / "model.keras")
            test = metaloss.data.load("spiral", seed=seed, batch_size=64).test
            logits = np.concatenate([reloaded(x).numpy() for x, _ in test])
            labels = np.concatenate([y.numpy().argmax(-1) for _, y in test])
            assert np.mean(logits.argmax(-1) == labels) == pytest.approx(record.test_accuracy)


def test_an_interrupted_study_trains_only_the_unfinished_runs(tmp_path, monkeypatch):
    first = population_runs("spiral", "mlp:hidden=[16]", LOSSES, [0, 1], tmp_path, **SETTINGS)
    (tmp_path / "baikal" / "seed1" / "results.json").unlink()
    trained = []
    original = study_module._train_together

    def counting(dataset, model, losses, pending, *args, **kwargs):
        trained.extend(pending)
        return original(dataset, model, losses, pending, *args, **kwargs)

    monkeypatch.setattr(study_module, "_train_together", counting)
    again = population_runs("spiral", "mlp:hidden=[16]", LOSSES, [0, 1], tmp_path, **SETTINGS)
    assert trained == [("baikal", 1)]
    for label in LOSSES:
        for a, b in zip(again[label], first[label], strict=True):
            assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"seeds": []}, "seeds"), ({"seeds": [1, 1]}, "seeds"), ({"losses": {}}, "losses")],
)
def test_bad_arguments_name_themselves(kwargs, argument):
    arguments = {"losses": LOSSES, "seeds": [0], **kwargs}
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        population_runs("spiral", "mlp", **arguments)
