"""The live display of a running search: generation, trials done, best so far, rejected."""

from __future__ import annotations

import math
import sys
import time

__all__ = ["SearchProgress"]

_BAR_WIDTH = 24


class SearchProgress:
    """Reports each ended trial: a live bar (``verbose=1``) or one line per trial (``2``).

    With the oracle in this process (a local search) it counts candidates (trained or
    rejected) out of ``generations × population`` and shows the generation, the best
    validation accuracy so far and the rejected and failed counts. A worker of a distributed
    search only sees its own trials. On a terminal the bar redraws in place; otherwise
    ``verbose=1`` prints one bar line per trial.
    """

    def __init__(self, oracle, verbose: int = 1, stream=None) -> None:
        self.verbose = int(verbose)
        self.stream = stream if stream is not None else sys.stdout
        self._summary = getattr(oracle, "summary", None)
        generations = getattr(oracle, "generations", None)
        population = getattr(oracle, "candidates_per_generation", None)
        self.total = generations * population() if generations is not None and population else None
        self._own_trials = 0
        self._start = time.perf_counter()
        self._dynamic = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def _bar(self, summary: dict) -> str:
        reused = summary.get("reused", 0)
        done = summary["trials_done"] + summary["rejected"] + reused
        if self.total:
            filled = min(_BAR_WIDTH, round(_BAR_WIDTH * done / self.total))
            head = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{self.total} candidates"
        else:
            head = f"{done} candidates"
        best = summary["best_score"]
        generation = f"{summary['generation']}"
        if summary.get("generations"):
            generation += f"/{summary['generations']}"
        return (
            f"{head} | generation {generation} | best val_accuracy "
            + (f"{best:.4f}" if best is not None else "-")
            + f" | rejected {summary['rejected']}"
            + (f" | reused {reused}" if reused else "")
            + f" | failed {summary['failed']}"
            + f" | {time.perf_counter() - self._start:.0f} s"
        )

    def _write(self, text: str, *, redraw: bool) -> None:
        if redraw and self._dynamic:
            self.stream.write("\r\033[K" + text)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def trial_ended(self, trial, candidate: dict | None) -> None:
        if self.verbose == 0:
            return
        self._own_trials += 1
        summary = self._summary() if self._summary is not None else None
        if self.verbose == 1 and summary is not None:
            self._write(self._bar(summary), redraw=True)
            return
        status = candidate["status"] if candidate else str(trial.status).lower()
        score = candidate["score"] if candidate else math.nan
        seconds = candidate["seconds"] if candidate else math.nan
        line = f"trial {trial.trial_id}: {status:<9} val_accuracy={score:.4f} ({seconds:.1f} s)"
        if summary is not None:
            line += " | " + self._bar(summary)
        self._write(line, redraw=False)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
