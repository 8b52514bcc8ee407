"""AdaLFL killed with SIGKILL in the middle of its online phase continues where it stopped."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

RUN = """
import json, os, signal, sys
import keras
from metaloss import data, models
from metaloss.search.online import online_fit

class KillMidEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if os.environ.get("KILL") == "1" and self.epoch == 1 and batch == 5:
            os.kill(os.getpid(), signal.SIGKILL)

keras.utils.set_random_seed(2)
ds = data.load("mnist1d", batch_size=100, seed=2, subset_fraction=0.25)
model = models.get("mlp", ds.input_shape, ds.num_classes)
result = online_fit(model, ds.train, epochs=3, init_steps=20, seed=2,
                    optimizer=keras.optimizers.Adam(1e-3), checkpoint_dir=sys.argv[1],
                    callbacks=[KillMidEpoch()], verbose=0)
print(json.dumps({"weights": [w.ravel().tolist() for w in model.get_weights()],
                  "phi": [w.ravel().tolist() for w in result.loss.get_weights()],
                  "snapshots": [s.step for s in result.snapshots],
                  "init": result.initialization.history["meta_loss"],
                  "history": result.history, "steps": result.steps}))
"""


def run(directory, kill: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN, str(directory)],
        env={**os.environ, "KILL": kill, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def last_json(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_killed_online_run_resumes_to_the_uninterrupted_result(tmp_path):
    killed = run(tmp_path / "resumed", "1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / "resumed" / "initialization.json").exists()
    resumed = last_json(run(tmp_path / "resumed", "0"))
    straight = last_json(run(tmp_path / "straight", "0"))
    assert resumed["snapshots"] == straight["snapshots"] == [0, 9, 18, 27]
    assert resumed["steps"] == straight["steps"] == 27
    np.testing.assert_allclose(resumed["init"], straight["init"], rtol=0, atol=1e-6)
    for key in ("weights", "phi"):
        for got, want in zip(resumed[key], straight[key], strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for key, values in straight["history"].items():
        np.testing.assert_allclose(resumed["history"][key], values, rtol=0, atol=1e-6)
