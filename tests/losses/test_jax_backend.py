"""The zoo is written in keras.ops, so it gives the same numbers on the JAX backend."""

import json

import numpy as np

from ..conftest import run_python
from .zoo_cases import METALOSS, build


def test_zoo_under_jax_matches_tensorflow():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).round(3).tolist()
    labels = rng.integers(0, 4, size=6).tolist()
    expected = {
        name: build(name, from_logits=True, reduction="none")(np.array(labels), np.array(logits))
        .numpy()
        .tolist()
        for name in METALOSS
    }
    code = f"""
import json, numpy as np, jax, keras
assert keras.backend.backend() == "jax", keras.backend.backend()
import tests.losses.zoo_cases as cases
labels, logits = np.array({labels}), np.array({logits}, dtype="float32")
out = {{}}
for name in {METALOSS!r}:
    loss = cases.build(name, from_logits=True, reduction="none")
    values = loss(labels, logits)
    grad = jax.grad(lambda z: loss(labels, z).sum())(logits)
    finite = bool(np.isfinite(grad).all())
    out[name] = {{"values": np.asarray(values).tolist(), "grad_finite": finite,
                  "type": type(values).__module__}}
print(json.dumps(out))
"""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    result = json.loads(
        run_python(code, env={"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}, cwd=root)
        .strip()
        .splitlines()[-1]
    )
    for name in METALOSS:
        assert result[name]["type"].startswith("jax"), result[name]["type"]
        assert result[name]["grad_finite"], name
        np.testing.assert_allclose(result[name]["values"], expected[name], rtol=1e-5, atol=1e-6)
