"""The shapes the AdaLFL paper reports, on a small real run (scikit-learn's digits, an MLP).

The learned loss is evaluated here with NumPy from the snapshots' weights (not with
``LearnedLoss``), and its slopes by finite differences:

- implicit learning-rate schedule: with plain SGD as the base optimizer the learned loss's
  slope (and so the step size) changes by a large factor over training;
- adaptive label smoothing: the non-target curve ``ℓ_φ(0, p)`` has its minimum away from p = 0
  after the offline phase.
"""

import keras
import numpy as np
import pytest

from metaloss.search import online_fit
from metaloss.training.experiment import setup_experiment

GRID = np.linspace(0.0, 1.0, 1001)


def numpy_loss_network(config, label, p):
    """``ℓ_φ(label, p)`` for a LearnedLoss config: dense layers, smooth leaky ReLU, softplus."""
    weights, leak, beta = config["weights"], config["leak"], config["smoothness"]
    hidden = np.stack([np.full_like(p, label), p], axis=-1)
    layers = len(weights) // 2
    for index in range(layers):
        hidden = hidden @ np.asarray(weights[2 * index]) + np.asarray(weights[2 * index + 1])
        if index < layers - 1:
            hidden = np.logaddexp(0.0, beta * hidden) * (1.0 - leak) / beta + leak * hidden
    return np.logaddexp(0.0, hidden[..., 0])


@pytest.fixture(scope="module")
def snapshots():
    data, model = setup_experiment(
        "digits",
        "mlp",
        seed=0,
        batch_size=64,
        validation_split=0.1,
        subset_fraction=1.0,
        data_dir=None,
    )
    result = online_fit(
        model,
        data.train_epoch,
        epochs=10,
        init_steps=200,
        optimizer=keras.optimizers.SGD(0.1),
        seed=0,
        verbose=0,
    )
    assert result.status == "completed"
    return result.snapshots


def test_the_target_slope_changes_over_training_an_implicit_learning_rate_schedule(snapshots):
    middle = int(np.searchsorted(GRID, 0.5))
    slopes = np.array(
        [np.gradient(numpy_loss_network(s.config, 1.0, GRID), GRID)[middle] for s in snapshots]
    )
    assert np.all(slopes < 0)  # the target loss falls as p rises, all along training
    magnitude = np.abs(slopes)
    assert magnitude.max() / magnitude.min() > 3.0
    # Not a monotone drift: the slope rises from its start and later falls below it.
    peak = int(np.argmax(magnitude))
    assert 0 < peak < len(magnitude) - 1 and magnitude[-1] < magnitude[0]


def test_after_the_offline_phase_the_non_target_minimum_leaves_p_zero(snapshots):
    offline = snapshots[0]
    assert offline.step == 0
    non_target = numpy_loss_network(offline.config, 0.0, GRID)
    minimum = GRID[np.argmin(non_target)]
    assert minimum > 0.05
    assert non_target[0] > non_target.min() + 1e-3  # a real dip, not a flat floor
