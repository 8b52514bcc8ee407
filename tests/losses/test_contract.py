"""The contract every registry entry keeps: finite, differentiable, compiled, saved and reloaded.

Plus, for the zoo's own classes, Keras's menu: both label formats, sample weights, every
reduction and dtypes.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss import losses

from ..conftest import run_python
from .zoo_cases import CONSTRUCTION, METALOSS, SPARSE_ONLY, build

NUM_CLASSES = 4


def batch(seed=0, size=8):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(size, NUM_CLASSES)).astype("float32") * 3
    labels = rng.integers(0, NUM_CLASSES, size=size)
    return labels, np.eye(NUM_CLASSES, dtype="float32")[labels], logits


def labels_for(name, sparse, one_hot):
    return sparse if name in SPARSE_ONLY else one_hot


@pytest.mark.parametrize("name", sorted(CONSTRUCTION))
def test_finite_values_and_gradients(name):
    loss = build(name, from_logits=True)
    sparse, one_hot, logits = batch()
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels_for(name, sparse, one_hot), logits)
    gradient = tape.gradient(value, logits)
    assert np.isfinite(float(value))
    assert gradient is not None and np.isfinite(gradient.numpy()).all()


@pytest.mark.parametrize("name", sorted(CONSTRUCTION))
def test_inside_tf_function_equals_eager(name):
    loss = build(name, from_logits=True)
    sparse, one_hot, logits = batch(1)
    y = labels_for(name, sparse, one_hot)
    compiled = tf.function(lambda a, b: loss(a, b), reduce_retracing=True)
    np.testing.assert_allclose(compiled(y, logits), loss(y, logits), rtol=1e-6)


def test_models_saved_with_each_loss_reload_in_a_fresh_process(tmp_path):
    sparse, one_hot, logits = batch(2)
    expected = {}
    for name in sorted(CONSTRUCTION):
        loss = build(name, from_logits=True)
        model = keras.Sequential([keras.Input((NUM_CLASSES,)), keras.layers.Dense(NUM_CLASSES)])
        model.compile(optimizer="sgd", loss=loss)
        model.save(tmp_path / f"{name}.keras")
        y = labels_for(name, sparse, one_hot)
        expected[name] = {
            "config": loss.get_config(),
            "value": float(loss(y, model(logits))),
        }
    np.savez(tmp_path / "data.npz", sparse=sparse, one_hot=one_hot, logits=logits)
    code = f"""
import json, numpy as np
import metaloss   # the only metaloss import: the zoo must register itself
import keras
data = np.load({str(tmp_path / "data.npz")!r})
out = {{}}
for name in {sorted(CONSTRUCTION)!r}:
    model = keras.saving.load_model({str(tmp_path)!r} + "/" + name + ".keras")
    y = data["sparse"] if name in {sorted(SPARSE_ONLY)!r} else data["one_hot"]
    out[name] = {{"config": model.loss.get_config(), "class": type(model.loss).__name__,
                  "value": float(model.loss(y, model(data["logits"])))}}
print(json.dumps(out))
"""
    reloaded = json.loads(run_python(code).strip().splitlines()[-1])
    for name, want in expected.items():
        assert reloaded[name]["config"] == json.loads(json.dumps(want["config"])), name
        assert reloaded[name]["value"] == pytest.approx(want["value"], rel=1e-5), name


@pytest.mark.parametrize("name", METALOSS)
def test_one_hot_and_sparse_labels_agree(name):
    loss = build(name, from_logits=True, reduction="none")
    sparse, one_hot, logits = batch(3)
    np.testing.assert_allclose(loss(sparse, logits), loss(one_hot, logits), rtol=1e-6)
    np.testing.assert_allclose(loss(sparse[:, None], logits), loss(one_hot, logits), rtol=1e-6)


@pytest.mark.parametrize("name", METALOSS)
@pytest.mark.parametrize(
    ("reduction", "reduce"),
    [
        ("sum_over_batch_size", lambda v, w: (v * w).sum() / len(v)),
        ("sum", lambda v, w: (v * w).sum()),
        ("mean", lambda v, w: (v * w).sum() / len(v)),
        ("mean_with_sample_weight", lambda v, w: (v * w).sum() / w.sum()),
    ],
)
def test_reductions_with_sample_weights(name, reduction, reduce):
    sparse, _, logits = batch(4)
    weights = np.linspace(0.1, 2.0, len(sparse)).astype("float32")
    per_sample = build(name, from_logits=True, reduction="none")(sparse, logits).numpy()
    assert per_sample.shape == (len(sparse),)
    value = build(name, from_logits=True, reduction=reduction)(sparse, logits, weights)
    assert float(value) == pytest.approx(reduce(per_sample, weights), rel=1e-5)


@pytest.mark.parametrize("name", METALOSS)
def test_dtype_float64_and_float16(name):
    sparse, _, logits = batch(5)
    # Per sample: Keras's own float16 reduction overflows beyond 65504 for large TaylorGLO θ.
    kwargs = {"from_logits": True, "reduction": "none"}
    value64 = build(name, dtype="float64", **kwargs)(sparse, logits.astype("float64"))
    value16 = build(name, dtype="float16", **kwargs)(sparse, logits)
    assert value64.dtype == tf.float64 and value16.dtype == tf.float16
    # float16 keeps ~3 significant digits of the logits themselves.
    np.testing.assert_allclose(value16.numpy().astype("float64"), value64, rtol=1e-2)


@pytest.mark.parametrize("name", METALOSS)
def test_config_round_trip(name):
    loss = build(name, from_logits=True, name="custom")
    clone = losses.deserialize(json.loads(json.dumps(losses.serialize(loss))))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    sparse, _, logits = batch(6)
    np.testing.assert_allclose(clone(sparse, logits), loss(sparse, logits), rtol=1e-6)
