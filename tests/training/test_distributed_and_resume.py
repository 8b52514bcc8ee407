"""Subprocess tests: MirroredStrategy over two logical CPUs, and a SIGKILLed run that resumes."""

import json
import pathlib

import numpy as np
import pytest

from ..conftest import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]

PRELUDE = """
import json, os, signal, sys
import numpy as np, tensorflow as tf, keras
from metaloss.training import Trainer
from tests.training.helpers import blobs, dataset, mlp
"""


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpus_equals_one_device():
    code = (
        PRELUDE
        + """
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
x, y = blobs(n=64)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = mlp(seed=7)
trainer = Trainer(model, "baikal", keras.optimizers.SGD(0.1, momentum=0.9), strategy=strategy)
mirrored = trainer.fit(dataset(x, y, 32), epochs=2, verbose=0)
single_model = mlp(seed=7)
Trainer(single_model, "baikal", keras.optimizers.SGD(0.1, momentum=0.9)).fit(
    dataset(x, y, 32), epochs=2, verbose=0)
difference = max(float(np.abs(a - b).max()) for a, b in zip(
    model.get_weights(), single_model.get_weights()))
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "steps": mirrored.steps,
                  "difference": difference, "history": mirrored.history}))
"""
    )
    result = json.loads(run_python(code, cwd=ROOT).strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["steps"] == 4
    assert result["difference"] < 1e-5
    assert len(result["history"]["loss"]) == 2


@pytest.mark.slow
def test_killed_run_resumes_and_ends_with_the_same_number_of_steps(tmp_path):
    train = (
        PRELUDE
        + f"""
class KillAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and os.environ.get("KILL") == "1":
            os.kill(os.getpid(), signal.SIGKILL)   # before the second epoch's checkpoint
x, y = blobs(n=80)   # 5 steps per epoch at batch 16
trainer = Trainer(mlp(seed=1), "baikal", keras.optimizers.SGD(0.05, momentum=0.9))
result = trainer.fit(dataset(x, y), epochs=4, checkpoint_dir={str(tmp_path)!r},
                     callbacks=[KillAfterEpoch()], verbose=0)
print(json.dumps({{"steps": result.steps, "epochs": result.epochs, "history": result.history,
                  "iterations": int(trainer.optimizer.iterations.numpy())}}))
"""
    )
    import os
    import subprocess
    import sys

    killed = subprocess.run(
        [sys.executable, "-c", train],
        env={**os.environ, "KILL": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 1
    resumed = json.loads(run_python(train, cwd=ROOT).strip().splitlines()[-1])
    assert resumed["epochs"] == 4 and resumed["steps"] == 20 and resumed["iterations"] == 20
    assert all(len(v) == 4 for v in resumed["history"].values())


RESUMABLE = """
import json, os, signal, sys
import keras, numpy as np
from metaloss import data, models
from metaloss.training import Trainer

class KillMidEpoch(keras.callbacks.Callback):
    # Epoch 3 of 5, halfway: after epoch 2's checkpoint, before epoch 3's.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if os.environ.get("KILL") == "1" and self.epoch == 2 and batch == 3:
            os.kill(os.getpid(), signal.SIGKILL)

keras.utils.set_random_seed(3)
# Shuffled, crop-and-flip and cutout augmented digits; a CNN with dropout.
ds = data.load("digits", batch_size=64, seed=3, augment=True, cutout=3)
model = models.get("cnn", ds.input_shape, ds.num_classes)
trainer = Trainer(model, "baikal", keras.optimizers.SGD(0.05, momentum=0.9))
result = trainer.fit(ds.train, epochs=5, validation=ds.validation, checkpoint_dir=sys.argv[1],
                     callbacks=[KillMidEpoch()], verbose=0)
print(json.dumps({"weights": [w.ravel().tolist() for w in model.get_weights()],
                  "steps": result.steps, "history": result.history}))
"""


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    import os
    import subprocess
    import sys

    def run(directory, kill):
        return subprocess.run(
            [sys.executable, "-c", RESUMABLE, str(directory)],
            env={**os.environ, "KILL": kill, "TF_CPP_MIN_LOG_LEVEL": "3"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    killed = run(tmp_path / "resumed", "1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = json.loads(run(tmp_path / "resumed", "0").stdout.strip().splitlines()[-1])
    straight = json.loads(run(tmp_path / "straight", "0").stdout.strip().splitlines()[-1])
    assert resumed["steps"] == straight["steps"] > 0
    for got, want in zip(resumed["weights"], straight["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for key, values in straight["history"].items():
        np.testing.assert_allclose(resumed["history"][key], values, rtol=0, atol=1e-6)
