"""`run_seeds` and `write_study`: resumable runs over seeds, and the files a study writes."""

import functools
import json

import keras
import pytest

from metaloss.training import (
    ExperimentResult,
    run_seeds,
    seed_directory,
    train_experiment,
    write_study,
)


def test_run_seeds_trains_each_seed_once_and_reloads_finished_runs(tmp_path):
    run = functools.partial(
        train_experiment, "digits", "mlp", "cross_entropy", epochs=1, batch_size=64, verbose=0
    )
    seen = []
    first = run_seeds(run, [0, 3], tmp_path, on_result=lambda r, done: seen.append((r.seed, done)))
    assert [r.seed for r in first] == [0, 3]
    assert seen == [(0, False), (3, False)]
    assert (seed_directory(tmp_path, 3) / "results.json").is_file()
    assert first[0].test_accuracy != first[1].test_accuracy  # different seeds, different runs

    def must_not_train(**_):
        raise AssertionError("a finished run was trained again")

    seen.clear()
    again = run_seeds(must_not_train, [0, 3], tmp_path, on_result=lambda r, d: seen.append(d))
    assert seen == [True, True]
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]


def test_a_run_without_results_json_is_trained_again(tmp_path):
    calls = []

    def fake(*, seed, output):
        calls.append(seed)
        return ExperimentResult("d", "m", "l", seed, 1, 1, "completed", "", 1.0, 0.5, 0.5, 0.1, 0.0)

    seed_directory(tmp_path, 0).mkdir(parents=True)  # an interrupted run left its directory
    run_seeds(fake, [0], tmp_path)
    assert calls == [0]


def test_run_seeds_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="argument `seeds`"):
        run_seeds(lambda **_: None, [-1], tmp_path)
    with pytest.raises(ValueError, match="argument `run`"):
        run_seeds(lambda **_: 0.5, [0], tmp_path)


def test_steps_budget_and_callbacks_of_train_experiment(tmp_path):
    class CountBatches(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            CountBatches.batches += 1

    # digits: 1 293 training examples after the 10% validation split -> 21 batches of 64 per
    # epoch, so 30 steps end inside the second epoch.
    result = train_experiment(
        "digits",
        "mlp",
        "cross_entropy",
        epochs=None,
        steps=30,
        batch_size=64,
        callbacks=[CountBatches()],
        output=tmp_path,
        verbose=0,
    )
    assert result.steps == 30 and CountBatches.batches == 30
    assert ExperimentResult.load(tmp_path).to_dict() == result.to_dict()
    assert ExperimentResult.load(tmp_path / "results.json").steps == 30


def test_write_study_writes_json_and_markdown(tmp_path):
    path = write_study(tmp_path / "s", {"a": 1}, "# title\n", name="claim")
    assert json.loads(path.read_text()) == {"a": 1}
    assert (tmp_path / "s" / "claim.md").read_text() == "# title\n"
    assert not list((tmp_path / "s").glob("*.partial"))


def test_steps_per_epoch_repeats_the_data_and_groups_the_history():
    from metaloss import losses

    loss = losses.CyclicClassEmphasis(3, period=4, amplitude=3, from_logits=True)
    # Spiral, full batch (270 training points, one batch per pass): 12 steps in epochs of 5.
    result = train_experiment(
        "spiral", "mlp:hidden=[8]", loss, epochs=None, steps=12, steps_per_epoch=5,
        batch_size=512, learning_rate=0.5, momentum=0.0, verbose=0,
    )  # fmt: skip
    assert (result.steps, result.epochs) == (12, 3)  # 5 + 5 + 2
    assert len(result.history["loss"]) == 3
    # The dynamical loss's clock counts optimizer steps, not epochs: it holds the step of the
    # last update made, the 12th (0-based 11).
    assert int(loss.step.numpy()) == 11
    with pytest.raises(ValueError, match="argument `steps_per_epoch`"):
        train_experiment("spiral", "mlp", "cross_entropy", steps_per_epoch=0)
