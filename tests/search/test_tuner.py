"""TaylorGLOSearch end to end on tiny tasks: trials, best loss, dashboards, failures."""

from __future__ import annotations

import json
import math

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

import metaloss
from metaloss.search import SearchTask, TaylorGLOSearch
from metaloss.search.tuner import BEST_LOSS_FILE, CANDIDATE_FILE, LOG_DIR, SEARCH_FILE

TINY = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("search")
    tuner = TaylorGLOSearch(TINY, generations=2, population_size=4, seed=0, directory=directory)
    tuner.search(verbose=0)
    return tuner, directory


def candidates(directory):
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((directory / "trials").glob(f"trial_*/{CANDIDATE_FILE}"))
    }


def test_every_candidate_is_a_trained_trial_or_rejected(finished):
    tuner, directory = finished
    history = tuner.oracle.history
    assert len(history) == 2
    trained = [t for g in history for t in g["trial_ids"] if t != "rejected"]
    assert sorted(trained) == sorted(tuner.oracle.trials)
    assert len(trained) + sum(g["rejected"] for g in history) == 8
    records = candidates(directory)
    assert len(records) == len(trained)
    for record in records.values():
        assert record["status"] in ("completed", "aborted", "diverged")
        assert len(record["history"]["val_accuracy"]) == record["epochs"] == 2
        # The candidate's loss is the TaylorGLO built from the trial's θ.
        theta = [record["values"][f"theta_{i}"] for i in range(8)]
        assert record["loss"]["config"]["theta"] == pytest.approx(theta)


def test_trial_score_is_the_final_validation_accuracy(finished):
    tuner, directory = finished
    for trial_id, record in candidates(directory).items():
        trial = tuner.oracle.get_trial(trial_id.removeprefix("trial_"))
        assert trial.score == pytest.approx(record["history"]["val_accuracy"][-1])


def test_best_loss_is_the_best_trial_and_reloads(finished):
    tuner, directory = finished
    scores = {k: r["score"] for k, r in candidates(directory).items()}
    best_key = max(scores, key=scores.get)
    loss = tuner.best_loss()
    assert isinstance(loss, metaloss.losses.TaylorGLO) and loss.from_logits
    assert list(loss.theta) == pytest.approx(
        [candidates(directory)[best_key]["values"][f"theta_{i}"] for i in range(8)]
    )
    reloaded = metaloss.losses.get(str(directory / BEST_LOSS_FILE))
    assert reloaded.get_config() == loss.get_config()
    settings = json.loads((directory / SEARCH_FILE).read_text())
    assert settings["task"]["dataset"] == "spiral" and settings["num_classes"] == 3


def test_candidates_share_initial_weights_and_data_order(finished):
    """Common random numbers: the same loss scores exactly the same in any trial."""
    task = finished[0].task
    first, second = metaloss.search.evaluate_candidates(task, ["cross_entropy"] * 2)
    assert first.history == second.history


def _tensor_values(accumulator, tag):
    return [float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]


def test_tensorboard_scalars_and_hparams_read_back(finished):
    _tuner, directory = finished
    root = event_accumulator.EventAccumulator(str(directory / LOG_DIR))
    root.Reload()
    [content] = root.PluginTagToContent("hparams").values()
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    names = {h.name for h in experiment.hparam_infos}
    assert {f"theta_{i}" for i in range(8)} | {"status"} == names
    assert "score" in {m.name.tag for m in experiment.metric_infos}

    for trial_id, record in candidates(directory).items():
        run = event_accumulator.EventAccumulator(str(directory / LOG_DIR / trial_id))
        run.Reload()
        assert _tensor_values(run, "validation_accuracy") == pytest.approx(
            record["history"]["val_accuracy"]
        )
        session = next(
            hparams_metadata.parse_session_start_info_plugin_data(c)
            for t, c in run.PluginTagToContent("hparams").items()
            if t == hparams_metadata.SESSION_START_INFO_TAG
        )
        assert session.hparams["theta_3"].number_value == pytest.approx(record["values"]["theta_3"])
        assert session.hparams["status"].string_value == record["status"]
        if record["status"] != "diverged":
            assert _tensor_values(run, "score") == pytest.approx([record["score"]])


def test_resuming_a_finished_search_trains_nothing(finished):
    tuner, directory = finished
    before = {k: r["seconds"] for k, r in candidates(directory).items()}
    again = TaylorGLOSearch(TINY, generations=2, population_size=4, seed=0, directory=directory)
    again.search(verbose=0)
    assert {k: r["seconds"] for k, r in candidates(directory).items()} == before
    assert len(again.oracle.trials) == len(tuner.oracle.trials)


class _DivergingSpace(keras_tuner.HyperModel):
    """A two-parameter loss whose value is +inf: every candidate diverges at step 1."""

    def build(self, hp):
        scale = hp.Float("scale", 1.0, 2.0) + hp.Float("shift", 1.0, 2.0)

        def loss(y_true, y_pred):
            return scale * ops.sum(ops.square(y_pred), axis=-1) * float("inf")

        return loss


def test_a_search_whose_every_candidate_diverges_ends_cleanly(tmp_path):
    tuner = TaylorGLOSearch(
        TINY,
        hypermodel=_DivergingSpace(),
        generations=2,
        population_size=3,
        seed=0,
        directory=tmp_path,
    )
    tuner.search(verbose=0)  # three "failures" in a row are deliberate, not crashes
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 6 and all(t.status == "FAILED" for t in trials)
    assert all(r["status"] == "diverged" for r in candidates(tmp_path).values())
    assert all(math.isnan(r["score"]) for r in candidates(tmp_path).values())
    assert tuner.oracle.summary()["failed"] == 6
    assert all(g["fitness"] == [None] * 3 for g in tuner.oracle.history)
    with pytest.raises(RuntimeError, match="No trial has completed"):
        tuner.best_loss()
    assert not (tmp_path / BEST_LOSS_FILE).exists()


def test_early_abort_stops_candidates_that_do_not_learn():
    # θ = 0 is a constant loss: nothing learns, validation accuracy stays at chance (1/3).
    task = SearchTask("spiral", "mlp:hidden=[16]", epochs=6, abort_epoch=2, abort_threshold=0.9)
    zero, ce = metaloss.search.evaluate_candidates(
        task, [metaloss.losses.TaylorGLO([0.0] * 8, from_logits=True), "cross_entropy"]
    )
    assert zero.status == "aborted" and zero.epochs == 2 and "early abort" in zero.message
    assert ce.epochs == 2 if ce.status == "aborted" else ce.epochs == 6
    lenient = SearchTask("spiral", "mlp:hidden=[16]", epochs=3, abort_epoch=2, abort_threshold=0.0)
    [result] = metaloss.search.evaluate_candidates(lenient, ["cross_entropy"])
    assert result.status == "completed" and result.epochs == 3
    assert result.score == result.history["val_accuracy"][-1]


def test_step_budget():
    task = SearchTask("spiral", "mlp:hidden=[16]", steps=7, batch_size=64)
    [result] = metaloss.search.evaluate_candidates(task, ["cross_entropy"])
    assert result.steps == 7 and result.status == "completed"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"epochs": 0}, "epochs"),
        ({"steps": 2.5}, "steps"),
        ({"validation_split": 0.0}, "validation_split"),
        ({"abort_threshold": 1.5}, "abort_threshold"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_task_arguments_name_themselves(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        SearchTask(**kwargs)


def test_search_needs_an_end_and_a_task(tmp_path):
    with pytest.raises(ValueError, match="argument `generations`"):
        TaylorGLOSearch(TINY, directory=tmp_path)
    with pytest.raises(ValueError, match="argument `task`"):
        TaylorGLOSearch("spiral", generations=1, directory=tmp_path)


def test_the_search_space_can_be_another_loss(tmp_path):
    space = metaloss.search.LossSpace(
        "cyclic_class_emphasis",
        {"period": (2, 50), "amplitude": (1.0, 100.0)},
        integers=("period",),
        num_classes=3,
        from_logits=True,
    )
    tuner = TaylorGLOSearch(
        TINY,
        hypermodel=space,
        generations=1,
        population_size=3,
        sigma0=[10.0, 20.0],
        seed=0,
        directory=tmp_path,
    )
    assert tuner.settings["invariant"] is False
    tuner.search(verbose=0)
    best = tuner.best_loss()
    assert isinstance(best, metaloss.losses.CyclicClassEmphasis)
    assert isinstance(best.period, int) and 2 <= best.period <= 50
    keras.utils.set_random_seed(0)
    assert np.isfinite(float(best(np.eye(3), np.eye(3) * 2.0)))


def test_robust_fitness_at_zero_eps_is_the_clean_fitness_and_bad_settings_name_the_field():
    from metaloss.search import evaluate_candidates

    common = {"dataset": "spiral", "model": "mlp:hidden=[16]", "epochs": 2, "batch_size": 64}
    clean = evaluate_candidates(SearchTask(**common), ["cross_entropy", "baikal"])
    at_zero = evaluate_candidates(
        SearchTask(**common, objective="robust", attack_eps=0.0), ["cross_entropy", "baikal"]
    )
    assert [r.score for r in at_zero] == [r.score for r in clean]
    attacked = evaluate_candidates(
        SearchTask(**common, objective="robust", attack_eps=0.5), ["cross_entropy"]
    )
    assert attacked[0].score < clean[0].score
    assert "FGSM (eps=0.5)" in attacked[0].message
    for field, value in (("objective", "loss"), ("attack_eps", -0.1), ("attack_loss", "mse")):
        with pytest.raises(ValueError, match=f"`{field}`"):
            SearchTask(**common, **{field: value})
