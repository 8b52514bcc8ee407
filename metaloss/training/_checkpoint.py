"""Per-epoch checkpoints of a :class:`~metaloss.training.Trainer` that a kill cannot tear."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

__all__ = ["EpochCheckpoint"]

_HISTORY_FILE = "history.json"
_STATE_FILE = "state-{epoch}.json"
_KEEP = 2


class EpochCheckpoint:
    """Model, optimizer, counters and seeds (a TensorFlow checkpoint) plus JSON state, per epoch.

    The JSON state of epoch ``e`` (history and a subclass's records) is written as
    ``state-e.json`` *before* the checkpoint that records epoch ``e``, so whatever moment a
    kill comes, the newest checkpoint always has its own state file. ``history.json`` is a copy
    for people to read.
    """

    def __init__(self, directory: str | Path, trainer) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._trainer = trainer
        self._checkpoint = tf.train.Checkpoint(
            model=trainer.model,
            optimizer=trainer.optimizer,
            epoch=trainer._epoch,
            run_steps=trainer._run_steps,
            seed_bases=trainer._seed_bases,
            **trainer._checkpoint_objects(),
        )
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.directory), _KEEP)

    def _state_path(self, epoch: int) -> Path:
        return self.directory / _STATE_FILE.format(epoch=epoch)

    def restore(self) -> dict[str, list[float]]:
        if self._manager.latest_checkpoint is None:
            return {}
        self._checkpoint.restore(self._manager.latest_checkpoint).assert_existing_objects_matched()
        self._trainer._seeds.bases = self._trainer._seed_bases.numpy()
        path = self._state_path(int(self._trainer._epoch.numpy()))
        state = json.loads(path.read_text()) if path.exists() else {}
        if not state and (self.directory / _HISTORY_FILE).exists():  # written before states
            state = {"history": json.loads((self.directory / _HISTORY_FILE).read_text())}
        self._trainer._restore_state(state.get("trainer", {}))
        return state.get("history", {})

    def save(self, history: dict[str, list[float]]) -> None:
        epoch = int(self._trainer._epoch.numpy())
        state = {"history": history, "trainer": self._trainer._checkpoint_state()}
        _write_json(self._state_path(epoch), state)
        self._manager.save()
        _write_json(self.directory / _HISTORY_FILE, history)
        # One checkpoint per epoch, the last `_KEEP` kept: so are their state files.
        kept = {self._state_path(epoch - back).name for back in range(_KEEP)}
        for stale in self.directory.glob(_STATE_FILE.format(epoch="*")):
            if stale.name not in kept:
                stale.unlink(missing_ok=True)


def _write_json(path: Path, payload) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload))
    partial.replace(path)
