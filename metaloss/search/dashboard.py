"""TensorBoard dashboards of a search: per-epoch scalars and the HParams plugin's summaries.

Layout (``tensorboard --logdir <search>/logs``): the experiment's HParams configuration at the
root, one run per trial (``trial_<id>``) with its per-epoch scalars, its hyperparameter values,
its status and its final score, so TensorBoard's HParams dashboard lists every trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

__all__ = [
    "EPOCH_SCALARS",
    "STATUSES",
    "ScalarLogger",
    "write_hparams_config",
    "write_trial_summary",
]

#: Keras log key -> TensorBoard tag of the scalars written every epoch.
EPOCH_SCALARS = {
    "loss": "train_loss",
    "accuracy": "train_accuracy",
    "val_loss": "validation_loss",
    "val_accuracy": "validation_accuracy",
}
#: Trial statuses as written in the HParams dashboard.
STATUSES = ("completed", "aborted", "diverged", "failed")
_CONFIG_MARKER = ".hparams_config_written"


class ScalarLogger(keras.callbacks.Callback):
    """Writes ``train_loss``, ``train_accuracy``, ``validation_loss``, ``validation_accuracy``
    every epoch (step = epoch number, from 1) to a TensorBoard run directory."""

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for key, tag in EPOCH_SCALARS.items():
                if logs and key in logs:
                    tf.summary.scalar(tag, float(logs[key]), step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _hparam(hp) -> hparams_api.HParam:
    if hasattr(hp, "min_value") and isinstance(hp.min_value, float | int):
        return hparams_api.HParam(
            hp.name, hparams_api.RealInterval(float(hp.min_value), float(hp.max_value))
        )
    return hparams_api.HParam(hp.name)


def write_hparams_config(log_dir: str | Path, space) -> None:
    """Declares the experiment (hyperparameters and metrics) at the root of ``log_dir``, once.

    Args:
        log_dir: the search's TensorBoard root.
        space: the ``keras_tuner.HyperParameters`` searched.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    if (log_dir / _CONFIG_MARKER).exists():
        return
    hparams = [_hparam(hp) for hp in space.space]
    hparams.append(hparams_api.HParam("status", hparams_api.Discrete(list(STATUSES))))
    metrics = [hparams_api.Metric("score", display_name="score (validation accuracy)")]
    metrics += [hparams_api.Metric(tag) for tag in EPOCH_SCALARS.values()]
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()
    (log_dir / _CONFIG_MARKER).touch()


def write_trial_summary(
    log_dir: str | Path,
    trial_id: str,
    values: Mapping[str, float],
    *,
    status: str,
    score: float | None,
    epochs: int = 0,
    seed_scores: Mapping[int, float] | None = None,
) -> None:
    """Writes one trial's hyperparameter values, status and final ``score`` to its run.

    Args:
        log_dir: the trial's run directory (``<root>/trial_<id>``).
        trial_id: the KerasTuner trial id.
        values: the trial's ``{hyperparameter: value}``.
        status: one of :data:`STATUSES`.
        score: the final score, `None` for a trial that has none.
        epochs: the step the score is written at. Defaults to `0`.
        seed_scores: ``{seed: score}`` of a candidate trained on several seeds, written as
            ``score/seed_<s>`` beside the mean ``score`` (NaN ones skipped). Defaults to `None`.
    """
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams({**values, "status": status}, trial_id=str(trial_id))
        if score is not None:
            tf.summary.scalar("score", float(score), step=epochs)
        for seed, value in (seed_scores or {}).items():
            if value == value:  # not NaN
                tf.summary.scalar(f"score/seed_{seed}", float(value), step=epochs)
    writer.close()
