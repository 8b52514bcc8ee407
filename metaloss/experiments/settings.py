"""An experiment's settings file: recorded on the first run, checked on every rerun.

An experiment directory holds ``settings.json``. Running the experiment again with the same
settings resumes it (every finished run is skipped); with different ones it is an error rather
than a silent mix of two experiments.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from metaloss._quiet import quiet_tensorflow

__all__ = [
    "IGNORED_SETTINGS",
    "SETTINGS_FILE",
    "SettingsMismatchError",
    "jsonable",
    "prepare_output",
]

SETTINGS_FILE = "settings.json"
# Settings that do not change an experiment's results.
IGNORED_SETTINGS = frozenset({"output", "overwrite", "verbose"})


class SettingsMismatchError(ValueError):
    """The experiment directory holds a run with other settings."""


def jsonable(value):
    """``value`` with paths as strings and tuples as lists, ready for ``json.dumps``."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def prepare_output(output: Path, settings: Mapping, *, overwrite: bool) -> dict:
    """Creates ``output`` and records ``settings`` there, or checks them against a previous run.

    Args:
        output: the experiment's directory.
        settings: its settings (``output``, ``overwrite`` and ``verbose`` are not recorded).
        overwrite: delete ``output`` first.

    Returns:
        The recorded settings.

    Raises:
        SettingsMismatchError: ``output`` holds a run with different settings (and not
            ``overwrite``). Settings the previous run did not record (added to the experiment
            since) are accepted.
    """
    quiet_tensorflow()
    settings = jsonable(dict(settings))
    kept = {k: v for k, v in settings.items() if k not in IGNORED_SETTINGS}
    output = Path(output)
    path = output / SETTINGS_FILE
    if overwrite and output.exists():
        shutil.rmtree(output)
    if path.is_file():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in previous if previous[k] != kept.get(k))
        if changed:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {kept.get(k)!r}" for k in changed)
            raise SettingsMismatchError(
                f"Invalid value for argument `output`: {output} holds a run with other "
                f"settings ({details}). Overwrite it (overwrite=True, --overwrite) to start "
                "afresh, or choose another output directory."
            )
    output.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(kept, indent=2) + "\n")
    partial.replace(path)
    return kept
