"""Repeating an experiment over seeds, resumably: the unit of every paper recipe.

A study is a set of arms (cross-entropy, Baikal, a searched TaylorGLO loss, ...) each run with
the same seeds. Every run writes its own directory ``<output>/seed<k>``; a directory that holds
``results.json`` is finished (the experiment functions write that file last), so a study that
was interrupted picks up at the first unfinished run, and a run that was interrupted mid-way
continues from its checkpoints when its function supports ``resume``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from metaloss.training.experiment import RESULTS_FILE, ExperimentResult

__all__ = ["run_seeds", "seed_directory", "write_study"]


def seed_directory(output: str | Path, seed: int) -> Path:
    """Where :func:`run_seeds` puts the run of ``seed``: ``<output>/seed<seed>``."""
    return Path(output) / f"seed{seed}"


def _as_record(result) -> ExperimentResult:
    # online_experiment returns an OnlineExperiment holding the usual record.
    record = getattr(result, "experiment", result)
    if not isinstance(record, ExperimentResult):
        raise ValueError(
            "Invalid value for argument `run`. Expected a function returning an "
            f"ExperimentResult (or an object with `.experiment`). Received: {type(result)}"
        )
    return record


def run_seeds(
    run: Callable[..., object],
    seeds: Iterable[int],
    output: str | Path,
    *,
    on_result: Callable[[ExperimentResult, bool], None] | None = None,
) -> list[ExperimentResult]:
    """Runs ``run(seed=k, output=<output>/seed<k>)`` for each seed, skipping finished runs.

    Args:
        run: an experiment function taking ``seed`` and ``output`` keywords and writing
            ``results.json`` last, such as ``functools.partial(train_experiment, ...)`` (give it
            ``resume=True`` to continue half-finished runs from checkpoints) or
            :func:`metaloss.search.online_experiment`.
        seeds: the seeds, in order.
        output: the arm's directory.
        on_result: called with each record and whether it was loaded from disk (`True`) or just
            trained (`False`), e.g. to print progress. Defaults to `None`.

    Returns:
        One :class:`ExperimentResult` per seed, in the order of ``seeds``.
    """
    records = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                "Invalid value for argument `seeds`. Expected integers >= 0. "
                f"Received: seeds containing {seed!r}"
            )
        directory = seed_directory(output, seed)
        finished = (directory / RESULTS_FILE).is_file()
        record = (
            ExperimentResult.load(directory)
            if finished
            else _as_record(run(seed=seed, output=directory))
        )
        if on_result is not None:
            on_result(record, finished)
        records.append(record)
    return records


def write_study(output: str | Path, payload: dict, markdown: str, *, name: str = "results") -> Path:
    """Writes ``<name>.json`` and ``<name>.md`` under ``output``, each atomically.

    Returns:
        The JSON file's path.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(payload, indent=2) + "\n"), (".md", markdown)):
        path = output / (name + suffix)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        partial.replace(path)
    return output / (name + ".json")
