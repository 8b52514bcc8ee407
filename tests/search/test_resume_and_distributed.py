"""Searches in other processes: killed with SIGKILL and resumed; a chief and two workers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaloss.search import SearchTask, TaylorGLOSearch
from tests.search.helpers import wait_for_chief

SEARCH = [
    "--dataset", "spiral", "--model", "mlp:hidden=[16]", "--generations", "3",
    "--population", "4", "--budget-epochs", "2", "--batch-size", "64", "--seed", "0",
    "--no-tensorboard", "--verbose", "2",
]  # fmt: skip


TRIAL_LINE = re.compile(r"^trial (\d+):", re.MULTILINE)  # verbose=2: one line per trial run


def search_process(directory: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metaloss",
            "search",
            *SEARCH,
            "--directory",
            str(directory),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def finished_candidates(directory: Path) -> dict[str, dict]:
    out = {}
    for path in (directory / "trials").glob("trial_*/candidate.json"):
        out[path.parent.name] = json.loads(path.read_text())
    return out


def reference_search(directory: Path) -> dict[str, dict]:
    """The same search, uninterrupted, in this process."""
    task = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64, seed=0)
    tuner = TaylorGLOSearch(
        task, generations=3, population_size=4, seed=0, tensorboard=False, directory=directory
    )
    tuner.search(verbose=0)
    return finished_candidates(directory)


def test_sigkilled_search_resumes_without_losing_or_repeating_trials(tmp_path):
    reference = reference_search(tmp_path / "reference")
    directory = tmp_path / "killed"
    process = search_process(directory)
    deadline = time.monotonic() + 300
    while len(finished_candidates(directory)) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the search never finished three trials"
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next trial (or between its writes)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    before = finished_candidates(directory)
    assert 3 <= len(before) < len(reference)

    resumed = search_process(directory, "--resume")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    after = finished_candidates(directory)
    # Finished trials were kept as they were (not trained again) ...
    for name, record in before.items():
        assert after[name] == record
    # ... at most the one running trial was retrained, and the search ended where an
    # uninterrupted one ends: the same trials, candidates and scores.
    retrained = TRIAL_LINE.findall(out)
    assert len(retrained) == len(reference) - len(before)
    assert sorted(after) == sorted(reference)
    for name in reference:
        assert after[name]["values"] == reference[name]["values"]
        assert after[name]["score"] == pytest.approx(reference[name]["score"], abs=1e-6)
    oracle = json.loads((directory / "trials" / "oracle.json").read_text())
    assert oracle["cmaes"]["generation"] == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_run_every_trial_exactly_once(tmp_path):
    directory = tmp_path / "distributed"
    cluster = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    chief = search_process(directory, env={**cluster, "KERASTUNER_TUNER_ID": "chief"})
    wait_for_chief(directory, chief)  # the chief's directory checks come first
    workers = [
        search_process(directory, env={**cluster, "KERASTUNER_TUNER_ID": f"worker{i}"})
        for i in range(2)
    ]
    outputs = []
    for process in [*workers, chief]:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        outputs.append(out)
    ran = [trial_id for out in outputs[:2] for trial_id in TRIAL_LINE.findall(out)]
    assert len(ran) == len(set(ran)), "a trial ran twice"
    oracle = json.loads((directory / "trials" / "oracle.json").read_text())
    history = oracle["cmaes"]["history"]
    assert len(history) == 3
    trained = sorted(t for g in history for t in g["trial_ids"] if t != "rejected")
    assert sorted(ran) == trained
    assert sorted(finished_candidates(directory)) == [f"trial_{t}" for t in trained]
    assert (directory / "best_loss.json").exists()


def test_an_evomal_chief_and_two_workers_carry_expressions_over_grpc(tmp_path):
    """Trial values are expression strings: KerasTuner's gRPC carries them; the chief screens."""
    directory = tmp_path / "evomal"
    cluster = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    extra = ("--method", "evomal", "--local-search-steps", "2", "--generations", "2")
    chief = search_process(directory, *extra, env={**cluster, "KERASTUNER_TUNER_ID": "chief"})
    wait_for_chief(directory, chief)
    workers = [
        search_process(directory, *extra, env={**cluster, "KERASTUNER_TUNER_ID": f"worker{i}"})
        for i in range(2)
    ]
    outputs = []
    for process in [*workers, chief]:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        outputs.append(out)
    ran = [trial_id for out in outputs[:2] for trial_id in TRIAL_LINE.findall(out)]
    assert len(ran) == len(set(ran)), "a trial ran twice"
    history = json.loads((directory / "trials" / "oracle.json").read_text())["evomal"]["history"]
    assert len(history) == 2
    trained = sorted(t for g in history for t in g["trial_ids"] if t not in ("rejected", "reused"))
    assert sorted(ran) == trained
    for record in finished_candidates(directory).values():
        expression = record["values"]["expression"]
        assert isinstance(expression, str) and record["loss"]["class_name"] == "SymbolicLoss"
    assert json.loads((directory / "best_loss.json").read_text())["class_name"] == "SymbolicLoss"
