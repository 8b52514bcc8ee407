"""HessianTracker under model.fit and under the metaloss Trainer, with a dynamical loss."""

from __future__ import annotations

import json
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.hessian import top_eigenvalues
from metaloss.analysis.hessian_tracker import HessianTracker, peaks_per_period
from metaloss.losses import CyclicClassEmphasis
from metaloss.training import LossClock, Trainer


def toy():
    """A 2 → 8 → 3 float32 MLP and 24 points of 3 classes (a stand-in for the spiral)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(8, "tanh"), keras.layers.Dense(3)]
    )
    rng = np.random.default_rng(0)
    y = np.arange(24) % 3
    x = (np.stack([np.cos(2.1 * y), np.sin(2.1 * y)], 1) + 0.5 * rng.normal(size=(24, 2))).astype(
        "float32"
    )
    return model, x, y


def cyclic():
    return CyclicClassEmphasis(3, period=4, amplitude=5, from_logits=True)


def test_records_every_n_steps_under_model_fit():
    model, x, y = toy()
    loss = cyclic()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    tracker = HessianTracker((x, y), every=2, k=2, tol=1e-6)
    model.fit(x, y, batch_size=24, epochs=4, verbose=0, callbacks=[LossClock(), tracker])
    assert tracker.steps == [0, 2, 4]
    assert all(values.shape == (2,) and values[0] >= values[1] for values in tracker.eigenvalues)
    assert all(tracker.converged) and tracker.ntk_max == []
    # The last record is the Hessian of the final weights at the loss's final step.
    assert int(loss.step.numpy()) == 3  # LossClock set it before the 4th update
    final = top_eigenvalues(model, loss, (x, y), k=2, tol=1e-6)
    np.testing.assert_allclose(tracker.eigenvalues[-1], final.eigenvalues, rtol=1e-4)
    assert len({float(values[0]) for values in tracker.eigenvalues}) == 3  # it changes


def test_records_under_the_trainer_with_a_dynamical_loss_and_json_history():
    model, x, y = toy()
    loss = cyclic()
    full_batch = tf.data.Dataset.from_tensor_slices((x, y)).batch(24)
    tracker = HessianTracker(full_batch, every=3)
    trainer = Trainer(model, loss, keras.optimizers.SGD(0.5))
    trainer.fit(full_batch, steps=6, callbacks=[tracker], verbose=0)
    assert tracker.steps == [0, 3, 6]
    history = json.loads(json.dumps(tracker.history()))
    assert history["steps"] == [0, 3, 6] and "ntk_max" not in history
    assert len(history["lambda_max"]) == 3 and all(v > 0 for v in history["lambda_max"])
    assert history["eigenvalues"] == [[v] for v in history["lambda_max"]]
    # A second run goes on from step 6 and does not record it twice.
    trainer.fit(full_batch, steps=3, callbacks=[tracker], verbose=0)
    assert tracker.steps == [0, 3, 6, 9]


def test_ntk_is_recorded_alongside(monkeypatch):
    calls = []

    def empirical_ntk(model, x, trace_classes=True):
        calls.append(trace_classes)
        return np.diag([3.0, 1.0])

    def eigenvalues(kernel):
        return np.sort(np.linalg.eigvalsh(kernel))[::-1]

    stub = types.ModuleType("metaloss.analysis.ntk")
    stub.empirical_ntk, stub.eigenvalues = empirical_ntk, eigenvalues
    monkeypatch.setitem(sys.modules, "metaloss.analysis.ntk", stub)
    model, x, y = toy()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    tracker = HessianTracker((x, y), every=1, ntk_inputs=x[:2])
    model.fit(x, y, batch_size=12, epochs=1, verbose=0, callbacks=[tracker])
    assert tracker.steps == [0, 1, 2] and tracker.ntk_max == [3.0, 3.0, 3.0]
    assert calls == [True] * 3 and tracker.history()["ntk_max"] == [3.0, 3.0, 3.0]


def test_ntk_with_the_real_module():
    ntk = pytest.importorskip("metaloss.analysis.ntk")
    model, x, y = toy()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    tracker = HessianTracker((x, y), every=100, ntk_inputs=x[:4])
    model.fit(x, y, batch_size=24, epochs=1, verbose=0, callbacks=[tracker])
    expected = ntk.eigenvalues(ntk.empirical_ntk(model, x[:4], trace_classes=True))[0]
    assert tracker.steps == [0] and tracker.ntk_max[0] > 0
    # One SGD step later the kernel has moved a little, not much.
    np.testing.assert_allclose(tracker.ntk_max[0], expected, rtol=0.5)


def test_bad_arguments_are_value_errors():
    model, x, y = toy()
    for kwargs, argument in [
        ({"data": x}, "data"),
        ({"data": (x, y), "every": 0}, "every"),
        ({"data": (x, y), "k": 0}, "k"),
        ({"data": (x, y), "tol": -1.0}, "tol"),
        ({"data": (x, y), "hvp": "finite_differences"}, "hvp"),
    ]:
        with pytest.raises(ValueError, match=f"argument `{argument}`"):
            HessianTracker(**kwargs)
    tracker = HessianTracker((x, y))
    tracker.set_model(model)  # never compiled: no loss to track
    with pytest.raises(ValueError, match="argument `loss`"):
        tracker.on_train_begin()


def test_peaks_per_period_assigns_records_to_the_period_of_the_update_just_made():
    # T = 10, records every 5 steps. The record at step 10 measures the loss of update 10, i.e.
    # loss step 9: it closes period 0. Peaks chosen by hand: 1.5 at step 10 (period 0), 2.5 at
    # step 15 (period 1, just after its start), 0.7 at step 30 (period 2, A = 1 from there).
    history = {
        "steps": [0, 5, 10, 15, 20, 25, 30],
        "lambda_max": [1.0, 1.2, 1.5, 2.5, 2.1, 0.5, 0.7],
        "ntk_max": [10.0, 11.0, 12.0, 13.0, 9.0, 20.0, 30.0],
    }
    rows = peaks_per_period(history, period=10, learning_rate=1.0, num_classes=3, plain_from=2)
    assert [r["period"] for r in rows] == [0, 1, 2]
    assert [r["records"] for r in rows] == [3, 2, 2]
    assert [r["lambda_max"] for r in rows] == [1.5, 2.5, 0.7]
    assert [r["step"] for r in rows] == [10, 15, 30]
    assert [r["fraction"] for r in rows] == [1.0, 0.5, 1.0]
    assert [r["above_edge"] for r in rows] == [False, True, False]  # 2/η = 2
    assert [r["emphasised_class"] for r in rows] == [0, 1, None]
    assert [r["ntk_max"] for r in rows] == [12.0, 13.0, 30.0]
    # η = 0.5 moves the line to 4: nothing is above it. No emphasis for a baseline.
    rows = peaks_per_period(history, period=10, learning_rate=0.5, num_classes=None)
    assert not any(r["above_edge"] for r in rows)
    assert all(r["emphasised_class"] is None for r in rows)
