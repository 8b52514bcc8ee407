"""A distributed search survives a worker killed mid-trial; a worker whose chief died stops.

Real processes on 127.0.0.1: a chief and workers started as `metaloss search` commands, killed
with SIGKILL (keras-team/keras-tuner issue #915: without a trial timeout the search waits for
the dead worker's trial for ever).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from keras_tuner.src import protos

from metaloss.search._chief import ChiefNotAnswering, guard_chief_calls
from tests.search.helpers import wait_for_chief
from tests.search.test_resume_and_distributed import TRIAL_LINE, finished_candidates, free_port

SEARCH = [
    "--dataset", "spiral", "--model", "mlp:hidden=[16]", "--generations", "2",
    "--population", "4", "--budget-epochs", "2", "--batch-size", "64", "--seed", "0",
    "--no-tensorboard", "--verbose", "2",
]  # fmt: skip
# --trial-timeout: well above a trial's few seconds here, even on a loaded machine (a live
# trial abandoned by mistake would be trained twice, its first result ignored).
TIMEOUT = 20


def start(
    directory: Path, tuner_id: str, port: int, *extra: str, timeout: float = TIMEOUT
) -> subprocess.Popen:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "KERASTUNER_TUNER_ID": tuner_id,
    }
    command = [sys.executable, "-m", "metaloss", "search", *SEARCH, "--directory", str(directory)]
    return subprocess.Popen(
        [*command, "--trial-timeout", str(timeout), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def oracle_state(directory: Path) -> dict:
    try:
        return json.loads((directory / "trials" / "oracle.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for_running_trial(directory: Path, tuner_id: str, processes) -> str:
    """Polls the chief's oracle.json until ``tuner_id`` has a running trial; returns its id."""
    deadline = time.monotonic() + 300
    while (trial_id := oracle_state(directory).get("ongoing_trials", {}).get(tuner_id)) is None:
        assert time.monotonic() < deadline, f"{tuner_id} never got a trial"
        assert all(p.poll() is None for p in processes), "a process ended early"
        time.sleep(0.01)
    return trial_id


def trial_file(directory: Path, trial_id: str) -> dict:
    return json.loads((directory / "trials" / f"trial_{trial_id}" / "trial.json").read_text())


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_replaced_and_every_candidate_scored_once(tmp_path):
    directory, port = tmp_path / "distributed", free_port()
    chief = start(directory, "chief", port)
    wait_for_chief(directory, chief)  # the chief's directory checks come first
    workers = [start(directory, f"worker{i}", port) for i in range(2)]
    killed = wait_for_running_trial(directory, "worker1", [chief, *workers])
    workers[1].send_signal(signal.SIGKILL)  # mid-trial, and never restarted
    dead_out, _ = workers[1].communicate(timeout=60)
    assert workers[1].returncode == -signal.SIGKILL

    outputs = {}
    for name, process in (("worker0", workers[0]), ("chief", chief)):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        outputs[name] = out
    assert f"Trial {killed} abandoned" in outputs["chief"]

    oracle = oracle_state(directory)
    history = oracle["cmaes"]["history"]
    assert len(history) == 2 and oracle["ongoing_trials"] == {}
    # Every candidate of every generation has exactly one trial (or was rejected untrained) ...
    slots = [t for g in history for t in g["trial_ids"]]
    assert len(slots) == 2 * 4 and None not in slots and killed not in slots
    trained = sorted(t for t in slots if t != "rejected")
    assert len(trained) == len(set(trained))
    # ... trained once, by a living worker: the dead one's trial is not counted.
    abandoned_ids = [t for g in history for t in g["abandoned_trial_ids"]]
    assert killed in abandoned_ids and sum(g["abandoned"] for g in history) == len(abandoned_ids)
    ran = TRIAL_LINE.findall(outputs["worker0"]) + TRIAL_LINE.findall(dead_out)
    assert sorted(t for t in ran if t not in abandoned_ids) == trained
    assert set(finished_candidates(directory)) >= {f"trial_{t}" for t in trained}
    # The abandoned trial is recorded, and its candidate went to another trial.
    abandoned = trial_file(directory, killed)
    assert abandoned["status"] == "FAILED" and abandoned["message"].startswith("abandoned")
    values = abandoned["hyperparameters"]["values"]
    again = [t for t in trained if trial_file(directory, t)["hyperparameters"]["values"] == values]
    assert len(again) == 1 and trial_file(directory, again[0])["status"] == "COMPLETED"
    assert (directory / "best_loss.json").exists()


@pytest.mark.slow
def test_a_worker_whose_chief_died_exits_with_a_message(tmp_path):
    directory, port = tmp_path / "orphan", free_port()
    chief = start(directory, "chief", port)
    wait_for_chief(directory, chief)
    worker = start(directory, "worker0", port, timeout=5)  # gives up on its chief after 5 s
    wait_for_running_trial(directory, "worker0", [chief, worker])  # it has met its chief
    chief.send_signal(signal.SIGKILL)
    chief.communicate(timeout=60)
    try:
        _, err = worker.communicate(timeout=300)  # a bound for the harness, not a claim
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail("the worker is still waiting for its dead chief")
    assert worker.returncode == 1
    lines = [line for line in err.splitlines() if "not answering" in line]
    assert lines == [lines[0]] and lines[0].startswith(
        f"Error: the chief at 127.0.0.1:{port} is not answering"
    )
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_chief_of_a_worker_training_candidates_together_exits(tmp_path):
    # The worker serves trials under worker0 and worker0-1; the chief waits until each of them
    # has been told the search is over.
    directory, port = tmp_path / "together", free_port()
    chief = start(directory, "chief", port)
    wait_for_chief(directory, chief)
    worker = start(directory, "worker0", port, "--parallel-candidates", "2")
    for process in (worker, chief):
        try:
            _, err = process.communicate(timeout=600)  # a bound for the harness, not a claim
        except subprocess.TimeoutExpired:
            chief.kill()
            worker.kill()
            pytest.fail("the search did not end")
        assert process.returncode == 0, err[-3000:]
    assert len(oracle_state(directory)["cmaes"]["history"]) == 2


def test_a_call_to_a_silent_chief_raises_once_it_has_answered_before(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))

    class Client:  # the one attribute of KerasTuner's OracleClient that the guard uses
        stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    client = Client()
    guard_chief_calls(client, timeout=0.5)
    client.stub._answered = True  # as after a first answer: later calls get the deadline
    request = protos.get_service().GetSpaceRequest()
    with pytest.raises(ChiefNotAnswering, match=f"chief at 127.0.0.1:{port} is not answering"):
        client.stub.GetSpace(request, wait_for_ready=True, timeout=3600)
