"""The records of an AdaLFL run: snapshots of the learned loss and the run's result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import keras

from metaloss.losses import LearnedLoss
from metaloss.losses._base import invalid_value
from metaloss.training.trainer import FitResult

__all__ = ["OnlineResult", "Snapshot", "SnapshotRecorder"]


@dataclass
class Snapshot:
    """The learned loss at one point of training: ``step`` base steps after initialisation."""

    step: int
    epoch: int
    config: dict

    def loss(self) -> LearnedLoss:
        """The learned loss of this snapshot, rebuilt from its config."""
        return LearnedLoss.from_config(self.config)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class OnlineResult(FitResult):
    """What :func:`online_fit` did: the online phase's :class:`FitResult` fields, plus:

    Attributes:
        initialization: the offline phase's result (``history["meta_loss"]`` per step), or
            `None` when ``init_steps=0``.
        snapshots: the learned loss at the chosen steps; after a non-finite step the last one is
            the last finite network.
        loss: the learned loss at the end (the last finite one if the run diverged).
    """

    initialization: FitResult | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    loss: LearnedLoss | None = None

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("loss", "initialization")},
            "initialization": None
            if self.initialization is None
            else self.initialization.to_dict(),
            "loss": None if self.loss is None else self.loss.get_config(),
        }


class SnapshotRecorder(keras.callbacks.Callback):
    """Keeps the learned loss's config at the chosen steps (or at 0 and every epoch's end)."""

    def __init__(self, adalfl, steps: Sequence[int] | None) -> None:
        super().__init__()
        if steps is not None and not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps
        ):
            raise invalid_value("snapshot_steps", "a list of integers >= 0", steps)
        self.adalfl = adalfl
        self.steps = None if steps is None else set(steps)
        self.snapshots: list[Snapshot] = []
        self._epoch = 0
        self._resumed = False

    def resume(self, snapshots: list[Snapshot]) -> None:
        """Continues a checkpointed run: its snapshots so far, and no new one at its start."""
        self.snapshots = list(snapshots)
        self._resumed = True

    def record(self, step: int, epoch: int) -> None:
        if self.snapshots and self.snapshots[-1].step == step:
            self.snapshots.pop()
        self.snapshots.append(Snapshot(step, epoch, self.adalfl.loss.get_config()))

    def on_train_begin(self, logs=None) -> None:
        if self._resumed:
            return
        if self.steps is None or 0 in self.steps:
            self.record(self.adalfl._steps(), 0)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.steps is not None:
            step = self.adalfl._steps()
            if step in self.steps:
                self.record(step, self._epoch)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.steps is None:
            self.record(self.adalfl._steps(), epoch + 1)
