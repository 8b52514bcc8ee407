"""ML3: AdaLFL's offline phase, then plain training with the learned loss frozen."""

import keras
import numpy as np
import pytest

from metaloss.losses import LearnedLoss
from metaloss.search import ML3, AdaLFL, online_fit
from metaloss.training import Trainer

from ..training.helpers import blobs, dataset, mlp


def test_ml3_is_the_offline_phase_then_plain_training_with_that_loss():
    x, y = blobs(n=96)
    train = dataset(x, y)
    model = mlp(seed=1)
    ml3 = ML3(model, LearnedLoss(seed=2, from_logits=True), keras.optimizers.SGD(0.1, 0.9), seed=5)
    result = ml3.run(train, init_steps=12, epochs=3, verbose=0)

    # The reference: AdaLFL's offline phase alone, then a Trainer with a copy of its loss.
    offline_model = mlp(seed=1)
    offline = AdaLFL(
        offline_model, LearnedLoss(seed=2, from_logits=True), keras.optimizers.SGD(0.1), seed=5
    )
    offline.initialize(train, steps=12, verbose=0)
    frozen = LearnedLoss.from_config(offline.loss.get_config())
    plain_model = mlp(seed=1)
    plain = Trainer(plain_model, frozen, keras.optimizers.SGD(0.1, momentum=0.9))
    expected = plain.fit(train, epochs=3, verbose=0)

    for got, want in zip(model.get_weights(), plain_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.history["loss"], expected.history["loss"], rtol=1e-5)
    assert "meta_loss" not in result.history
    # Frozen: every snapshot (step 0 and each epoch's end) is the offline phase's network.
    assert [s.step for s in result.snapshots] == [0, 6, 12, 18]
    for snapshot in result.snapshots:
        for got, want in zip(snapshot.loss().get_weights(), frozen.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert int(ml3.meta_optimizer.iterations) == 12  # the offline steps only


def test_online_fit_method_chooses_between_adalfl_and_ml3():
    x, y = blobs(n=64)

    def final_loss(method):
        result = online_fit(
            mlp(seed=0),
            dataset(x, y),
            epochs=2,
            init_steps=3,
            optimizer=keras.optimizers.Adam(0.01),
            seed=0,
            verbose=0,
            method=method,
        )
        return [s.loss().get_weights() for s in result.snapshots]

    ml3, adalfl = final_loss("ml3"), final_loss("adalfl")
    # Both start from the same offline phase; only AdaLFL's network moves afterwards.
    for a, b in zip(ml3[0], adalfl[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(ml3[0], ml3[-1], strict=True))
    assert max(np.abs(a - b).max() for a, b in zip(adalfl[0], adalfl[-1], strict=True)) > 1e-4


def test_an_unknown_method_names_the_argument():
    x, y = blobs(n=32)
    with pytest.raises(ValueError, match=r"`method`.*'adalfl', 'ml3'.*'maml'"):
        online_fit(mlp(), dataset(x, y), epochs=1, method="maml")
