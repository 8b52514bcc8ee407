"""Shared helpers of the search tests: a tiny real search, and edits that mimic a killed one."""

import json
import shutil
from pathlib import Path


def tiny_search(directory: Path) -> Path:
    """Runs the tiny spiral search (3 generations of 5, 2 epochs each, ~15 s) into ``directory``."""
    from metaloss.search import SearchTask, TaylorGLOSearch

    search = TaylorGLOSearch(
        SearchTask("spiral", "mlp", epochs=2),
        generations=3,
        population_size=5,
        seed=0,
        directory=directory,
        overwrite=True,
    )
    search.search(verbose=0)
    return Path(directory)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_json(path: Path, payload) -> None:
    Path(path).write_text(json.dumps(payload))


def generation_scores(directory: Path) -> dict[int, list[float]]:
    """Generation -> its trials' scores, read from oracle.json and candidate.json files only."""
    history = read_json(directory / "trials" / "oracle.json")["cmaes"]["history"]
    scores = {}
    for record in history:
        ids = [t for t in record["trial_ids"] if t != "rejected"]
        scores[record["generation"]] = [
            read_json(directory / "trials" / f"trial_{t}" / "candidate.json")["score"] for t in ids
        ]
    return scores


def kill_during_last_generation(source: Path, target: Path) -> dict:
    """Copies a finished search and rewinds it to its last generation in flight.

    The last history record goes back to ``candidates``/``assigned`` with its last candidate not
    yet served; that candidate's trial becomes RUNNING without a candidate.json (killed while
    training); best_loss.json is gone (written only when a search ends); and an empty trial
    directory is left, as a kill right after creating it would. Returns the rewound record.
    """
    shutil.copytree(source, target)
    oracle_path = target / "trials" / "oracle.json"
    oracle = read_json(oracle_path)
    cmaes = oracle["cmaes"]
    last = cmaes["history"].pop()
    cmaes["generation"] = last["generation"]
    cmaes["candidates"] = last["candidates"]
    cmaes["assigned"] = [*last["trial_ids"][:-1], None]
    cmaes["fitness"] = [*last["fitness"][:-1], None]
    write_json(oracle_path, oracle)
    unserved = last["trial_ids"][-1]
    if unserved != "rejected":  # never created, since never served
        shutil.rmtree(target / "trials" / f"trial_{unserved}")
    running = [t for t in last["trial_ids"][:-1] if t != "rejected"][-1]
    trial_dir = target / "trials" / f"trial_{running}"
    (trial_dir / "candidate.json").unlink()
    trial = read_json(trial_dir / "trial.json")
    trial.update(status="RUNNING", score=None)
    write_json(trial_dir / "trial.json", trial)
    (target / "best_loss.json").unlink()
    (target / "trials" / "trial_9999").mkdir()
    return {"record": last, "running": running, "unserved": unserved}


def fail_every_trial(source: Path, target: Path) -> None:
    """Copies a finished search and rewrites it as one in which every candidate diverged."""
    shutil.copytree(source, target)
    oracle_path = target / "trials" / "oracle.json"
    oracle = read_json(oracle_path)
    for record in oracle["cmaes"]["history"]:
        trained = [t != "rejected" for t in record["trial_ids"]]
        record["fitness"] = [None] * len(record["fitness"])
        record["failed"] = sum(trained)
        record["best_fitness"] = record["median_fitness"] = None
    write_json(oracle_path, oracle)
    for trial_dir in (target / "trials").glob("trial_*"):
        candidate = read_json(trial_dir / "candidate.json")
        candidate.update(score=float("nan"), status="diverged", message="loss became NaN")
        write_json(trial_dir / "candidate.json", candidate)
        trial = read_json(trial_dir / "trial.json")
        trial.update(status="FAILED", score=None)
        write_json(trial_dir / "trial.json", trial)
    (target / "best_loss.json").unlink()


def wait_for_chief(directory: Path, chief, seconds: float = 300.0) -> None:
    """Waits until a chief process has checked and claimed ``directory`` (it writes
    ``search.json`` after its checks), so that workers started next cannot race its checks."""
    import time

    deadline = time.monotonic() + seconds  # a bound for the harness, not a claim
    while not (directory / "search.json").exists():
        if chief.poll() is not None:
            raise AssertionError(f"the chief exited first:\n{chief.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("the chief did not claim its directory")
        time.sleep(0.1)
