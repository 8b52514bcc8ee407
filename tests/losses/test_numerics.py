"""No NaN or inf anywhere: every zoo loss and its gradient on arbitrary probability vectors."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from .zoo_cases import METALOSS, build

LOSSES = {name: build(name, reduction="none") for name in METALOSS}
LOGIT_LOSSES = {name: build(name, from_logits=True, reduction="none") for name in METALOSS}


@st.composite
def probability_batches(draw):
    """4-class probability rows, many with exact zeros and ones (one-hot, saturated outputs)."""
    rows = draw(
        st.lists(
            st.one_of(
                st.lists(st.floats(0, 1), min_size=4, max_size=4),
                st.sampled_from([[1, 0, 0, 0], [0, 0, 0, 1], [0.5, 0.5, 0, 0]]),
                st.lists(st.sampled_from([0.0, 1e-30, 1e-12, 1.0]), min_size=4, max_size=4),
            ),
            min_size=1,
            max_size=6,
        )
    )
    probs = np.asarray(rows, dtype="float64") + 0.0
    probs[probs.sum(axis=1) == 0, 0] = 1.0
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = draw(st.lists(st.integers(0, 3), min_size=len(rows), max_size=len(rows)))
    return np.asarray(labels), probs.astype("float32")


def value_and_gradient(loss, labels, predictions):
    predictions = tf.constant(predictions)
    with tf.GradientTape() as tape:
        tape.watch(predictions)
        value = loss(labels, predictions)
    return value.numpy(), tape.gradient(value, predictions).numpy()


@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=60, deadline=None)
@given(data=probability_batches())
def test_probabilities_never_give_nan_or_inf(name, data):
    value, gradient = value_and_gradient(LOSSES[name], *data)
    assert np.isfinite(value).all() and np.isfinite(gradient).all()


@pytest.mark.parametrize("name", sorted(LOGIT_LOSSES))
@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(st.floats(-200, 200), min_size=4, max_size=4),
    label=st.integers(0, 3),
)
def test_extreme_logits_never_give_nan_or_inf(name, logits, label):
    value, gradient = value_and_gradient(
        LOGIT_LOSSES[name], np.asarray([label]), np.asarray([logits], dtype="float32")
    )
    assert np.isfinite(value).all() and np.isfinite(gradient).all()
