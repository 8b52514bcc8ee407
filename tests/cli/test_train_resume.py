"""`metaloss train --resume` after a SIGKILL ends with the uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

TRAIN = [
    "--dataset", "mnist1d", "--model", "cnn1d", "--epochs", "5", "--seed", "4",
    "--subset-fraction", "0.25", "--batch-size", "50",
]  # fmt: skip


def train(output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "metaloss", "train", *TRAIN, "--output", str(output), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def weights(output: Path) -> list[np.ndarray]:
    return keras.saving.load_model(output / "model.keras", compile=False).get_weights()


@pytest.mark.slow
def test_a_killed_train_resumes_to_the_uninterrupted_weights(tmp_path):
    resumed = tmp_path / "resumed"
    process = train(resumed, "--resume")
    deadline = time.monotonic() + 300
    # Killed as soon as the second epoch's state file is written: between it and its
    # checkpoint, or a little later, in the third epoch.
    while not (resumed / "checkpoints" / "state-2.json").exists():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (resumed / "results.json").exists()
    finish(train(resumed, "--resume"))
    straight = tmp_path / "straight"
    finish(train(straight))
    for got, want in zip(weights(resumed), weights(straight), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
