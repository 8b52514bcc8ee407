"""CMAESOracle's ``trial_timeout`` on a fake clock: a silent trial is abandoned, its candidate
served again, its late reports ignored, and all of it survives a chief restart."""

from __future__ import annotations

import json

import keras_tuner
import pytest

from metaloss.search import CMAESOracle, _trial_timeout
from metaloss.search.oracle import HEARTBEAT_METRIC
from tests.search.test_oracle import OBJECTIVE, finish, make_oracle, space, sphere


class FakeClock:
    def __init__(self, monkeypatch):
        self.time = 1_000_000.0  # wall-clock seconds, as time.time() gives
        monkeypatch.setattr(_trial_timeout, "now", lambda: self.time)

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def clock(monkeypatch):
    return FakeClock(monkeypatch)


def values(trial) -> dict:
    return dict(trial.hyperparameters.values)


def late_end(oracle, trial) -> None:
    """The end a worker reports: a copy of its trial (as gRPC makes), marked COMPLETED."""
    copy = keras_tuner.engine.trial.Trial.from_proto(trial.to_proto())
    copy.status = "COMPLETED"
    oracle.end_trial(copy)


def start_generation(oracle):
    """Serves the 4 candidates of a generation to w0..w3 and ends those of w0, w1, w2."""
    trials = [oracle.create_trial(f"w{i}") for i in range(4)]
    for trial in trials[:3]:
        finish(oracle, trial, sphere(values(trial)))
    return trials


def test_a_silent_trial_is_abandoned_and_its_candidate_scored_once(tmp_path, clock):
    reference = make_oracle(tmp_path, "reference", generations=2)
    reference_trials = start_generation(reference)
    finish(reference, reference_trials[3], sphere(values(reference_trials[3])))

    oracle = make_oracle(tmp_path, generations=2, trial_timeout=60)
    trials = start_generation(oracle)
    silent = trials[3]  # w3 died while training it
    clock.advance(59.0)
    assert oracle.create_trial("w0").status == "IDLE"  # not silent for long enough yet
    clock.advance(1.0)
    again = oracle.create_trial("w0")
    assert again.status == "RUNNING" and again.trial_id != silent.trial_id
    assert values(again) == values(silent)  # the same candidate, to the next tuner asking
    abandoned = oracle.trials[silent.trial_id]
    assert abandoned.status == "FAILED" and abandoned.message.startswith("abandoned")
    assert "w3" not in oracle.ongoing_trials and "w3" not in oracle.tuner_ids
    assert oracle.summary()["abandoned"] == 1

    # The dead worker's late reports change nothing, and tell it to stop.
    late = oracle.update_trial(silent.trial_id, {"score": -1e9})
    assert late.status == "STOPPED"
    assert not oracle.trials[silent.trial_id].metrics.exists("score")
    late_end(oracle, silent)
    assert oracle.generation == 0 and oracle.trials[silent.trial_id].status == "FAILED"

    finish(oracle, again, sphere(values(again)))
    [generation] = oracle.history
    assert generation["trial_ids"] == [t.trial_id for t in trials[:3]] + [again.trial_id]
    assert generation["fitness"] == reference.history[0]["fitness"]  # each scored once
    assert generation["abandoned"] == 1
    assert generation["abandoned_trial_ids"] == [silent.trial_id]
    assert generation["failed"] == 0
    # CMA-ES saw the same generation as without the death: the same next candidates.
    assert values(oracle.create_trial("w0")) == values(reference.create_trial("w0"))
    late_end(oracle, silent)  # later still: still ignored
    assert len(oracle.history) == 1
    summary = oracle.summary()
    assert summary["abandoned"] == 1 and summary["failed"] == 0
    assert summary["trials_done"] == 4 and summary["trials_running"] == 1


def test_reports_keep_a_trial_alive_and_a_restarted_worker_gets_a_fresh_trial(tmp_path, clock):
    oracle = make_oracle(tmp_path, trial_timeout=60)
    trials = start_generation(oracle)
    clock.advance(50.0)
    oracle.update_trial(trials[3].trial_id, {"score": 5.0})  # per-epoch metrics: alive
    clock.advance(50.0)
    assert oracle.create_trial("w0").status == "IDLE"  # 50 s since the report
    # A worker restarted under the same id resumes its own trial (KerasTuner's rule), which
    # counts as a report too.
    assert oracle.create_trial("w3").trial_id == trials[3].trial_id
    clock.advance(59.0)
    assert oracle.create_trial("w0").status == "IDLE"
    clock.advance(1.0)
    # Restarted after its trial was abandoned: the same id gets a fresh trial, not the old one.
    fresh = oracle.create_trial("w3")
    assert fresh.status == "RUNNING" and fresh.trial_id != trials[3].trial_id
    assert values(fresh) == values(trials[3])
    assert oracle.trials[trials[3].trial_id].status == "FAILED"


def test_a_heartbeat_keeps_a_trial_alive_and_is_no_result(tmp_path, clock):
    oracle = make_oracle(tmp_path, generations=2, trial_timeout=60)
    trials = start_generation(oracle)
    alive = trials[3]
    for epoch in range(5):  # a long trial: 5 epochs of 50 s each
        clock.advance(50.0)
        answer = oracle.update_trial(alive.trial_id, {HEARTBEAT_METRIC: epoch + 1.0}, step=epoch)
        assert answer.status == "RUNNING"
        assert oracle.create_trial("w0").status == "IDLE"  # not abandoned
    assert not oracle.trials[alive.trial_id].metrics.exists(HEARTBEAT_METRIC)
    finish(oracle, alive, sphere(values(alive)))
    assert oracle.history[0]["abandoned"] == 0 and oracle.trials[alive.trial_id].score == (
        sphere(values(alive))
    )


def test_abandonment_survives_a_chief_restart(tmp_path, clock):
    oracle = make_oracle(tmp_path, trial_timeout=60)
    trials = start_generation(oracle)
    clock.advance(60.0)
    again = oracle.create_trial("w0")
    state = json.loads(json.dumps(oracle.get_state()))  # the oracle state is JSON
    assert state["cmaes"]["trial_clock"]["abandoned"] == {trials[3].trial_id: 0}
    assert state["cmaes"]["trial_clock"]["last_report"] == {again.trial_id: clock.time}

    fresh = make_oracle(tmp_path, trial_timeout=60)
    fresh.reload()  # KerasTuner's reload: the running trial is retried first
    late_end(fresh, trials[3])  # the dead worker's late end: still ignored
    assert fresh.trials[trials[3].trial_id].status == "FAILED"
    retried = fresh.create_trial("w1")
    assert retried.trial_id == again.trial_id and values(retried) == values(trials[3])
    finish(fresh, retried, 7.0)
    [generation] = fresh.history
    assert generation["fitness"][3] == 7.0 and generation["abandoned"] == 1
    assert fresh.summary()["abandoned"] == 1


def test_a_tuner_silent_between_trials_is_forgotten_so_the_chief_can_exit(tmp_path, clock):
    oracle = make_oracle(tmp_path, trial_timeout=60)
    first, second = oracle.create_trial("w0"), oracle.create_trial("w1")
    finish(oracle, first, 1.0)
    finish(oracle, second, 2.0)  # and then w1 dies, between two trials
    oracle.create_trial("w0")
    clock.advance(60.0)
    oracle.create_trial("w0")  # w0 has its trial back; w1 has not asked for 60 s
    assert oracle.tuner_ids == {"w0"}  # KerasTuner's chief waits until this empties
    assert oracle.create_trial("w1").status == "RUNNING"  # w1 restarted: welcome back
    assert oracle.tuner_ids == {"w0", "w1"}


def test_a_restarted_chief_goes_on_counting_from_the_saved_wall_clock(tmp_path, clock):
    oracle = make_oracle(tmp_path, trial_timeout=60)
    trials = [oracle.create_trial(f"w{i}") for i in range(2)]
    state = json.loads(json.dumps(oracle.get_state()))
    fresh = make_oracle(tmp_path, "fresh", trial_timeout=60)
    fresh.trials = oracle.trials
    fresh.set_state(state)  # keeps ongoing trials (reload would queue them for retry)
    clock.advance(60.0)
    fresh.create_trial("w9")
    assert all(fresh.trials[t.trial_id].status == "FAILED" for t in trials)


def test_without_a_timeout_trials_wait_for_ever(tmp_path, clock):
    oracle = make_oracle(tmp_path)
    start_generation(oracle)
    clock.advance(1e9)
    assert oracle.create_trial("w0").status == "IDLE"
    assert oracle.summary()["abandoned"] == 0


def test_a_state_saved_before_trials_were_timed_loads(tmp_path, clock):
    oracle = make_oracle(tmp_path, trial_timeout=60)
    trials = [oracle.create_trial(f"w{i}") for i in range(2)]
    state = oracle.get_state()
    del state["cmaes"]["trial_clock"]
    fresh = make_oracle(tmp_path, "old", trial_timeout=60)
    fresh.trials = oracle.trials
    fresh.set_state(state)
    fresh.create_trial("w9")  # the clock of unclocked running trials starts now
    clock.advance(59.0)
    assert fresh.create_trial("w9").status == "RUNNING"  # w9 has its trial
    assert all(fresh.trials[t.trial_id].status == "RUNNING" for t in trials)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "30"])
def test_bad_trial_timeouts_name_themselves(value):
    with pytest.raises(ValueError, match="Invalid value for argument `trial_timeout`"):
        CMAESOracle(OBJECTIVE, hyperparameters=space(), trial_timeout=value)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_search_beats_every_epoch_and_scores_as_without_a_timeout(tmp_path, parallel):
    from metaloss.search import SearchTask, TaylorGLOSearch

    task = SearchTask("spiral", "mlp:hidden=[16]", epochs=3, batch_size=64)
    scores, beats = {}, []
    for timeout in (None, 3600):
        tuner = TaylorGLOSearch(
            task,
            generations=1,
            population_size=4,
            seed=0,
            tensorboard=False,
            parallel_candidates=parallel,
            trial_timeout=timeout,
            directory=tmp_path / str(timeout),
        )
        update = tuner.oracle.update_trial

        def spy(trial_id, metrics, step=0, update=update):
            if HEARTBEAT_METRIC in metrics:
                beats.append((trial_id, step))
            return update(trial_id, metrics, step=step)

        tuner.oracle.update_trial = spy
        tuner.search(verbose=0)
        scores[timeout] = {t.trial_id: t.score for t in tuner.oracle.trials.values()}
    assert scores[None] == scores[3600]
    # One beat per epoch of every trained trial, and none without a timeout.
    assert sorted(beats) == sorted((t, e) for t in scores[3600] for e in range(3))
