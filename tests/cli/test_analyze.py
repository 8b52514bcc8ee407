"""`metaloss analyze`: each subcommand on tiny sizes, its JSON checked against the library."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from metaloss.analysis import hessian
from metaloss.cli import main
from metaloss.data import load
from metaloss.models import get as get_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(main, ["analyze", *map(str, args)], catch_exceptions=False)


def stdout_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small MNIST-1D MLP, briefly trained and saved with its compiled (one-hot) loss."""
    keras.utils.set_random_seed(0)
    x, y = load("mnist1d").arrays("train")
    model = get_model("mlp", (40,), 10, hidden=[32])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[:2000], np.eye(10)[y[:2000]], epochs=3, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("model") / "mlp.keras"
    model.save(path)
    uncompiled = get_model("mlp", (40,), 10, hidden=[8])
    bare = path.with_name("bare.keras")
    uncompiled.save(bare)
    return path, bare


def test_gamma_table_json_and_plot(tmp_path):
    result = invoke("gamma", "--loss", "baikal", "--loss", "mse", "--points", "0.5")
    assert result.exit_code == 0 and "baikal" in result.output and "mse" in result.output
    payload = stdout_json(invoke("gamma", "--loss", "baikal", "--points", "0.5", "--json"))
    # Baikal, γ = 1/y + x/y²: target at 0.5 gives 2 + 4; the others get 0.5/9 each: 18.
    rule = payload["losses"]["baikal"]
    np.testing.assert_allclose([rule["gamma_target"][0], rule["gamma_non_target"][0]], [6, 18])
    plot = tmp_path / "gamma.png"
    assert invoke("gamma", "--plot", plot).exit_code == 0
    assert plot.read_bytes()[:8] == PNG_MAGIC


def test_gamma_of_a_symbolic_loss():
    # -Σ y log f, summed over 10 classes: γ = n·(-∂L/∂f) is 10/p for the target, 0 otherwise.
    spec = "symbolic:expression=neg(mul(y,log(f)))"
    payload = stdout_json(invoke("gamma", "--loss", spec, "--points", "0.5,0.8", "--json"))
    rule = payload["losses"][spec]
    np.testing.assert_allclose(rule["gamma_target"], [20.0, 12.5], rtol=1e-5)
    np.testing.assert_allclose(rule["gamma_non_target"], [0.0, 0.0], atol=1e-6)


def test_gamma_rejects_bad_points():
    result = invoke("gamma", "--points", "0.5,1.5")
    assert result.exit_code == 2 and "--points" in result.output


def test_invariant_reports_both_rules():
    payload = stdout_json(invoke("invariant", "--json"))
    assert set(payload) == {"cross_entropy", "mse", "baikal", "taylor_glo_reference"}
    # The reference-code loss fails the coded rule at 10 classes, yet softmax learning starts.
    reference = payload["taylor_glo_reference"]
    assert reference["coded_rule"] is False and reference["softmax_rule"] is True
    np.testing.assert_allclose(payload["baikal"]["gamma_target"], 110.0)
    table = invoke("invariant", "--loss", "baikal", "--num-classes", "3").output
    assert "holds" in table


def test_attraction_on_a_saved_model(saved_model, tmp_path):
    path, _ = saved_model
    plot = tmp_path / "attraction.png"
    result = invoke(
        "attraction", "--model", path, "--loss", "ce", "--loss", "baikal",
        "--samples", 200, "--json", "--plot", plot,
    )  # fmt: skip
    payload = stdout_json(result)
    assert payload["samples"] == 200
    assert payload["losses"]["ce"]["pushed_away_correct"] == 0.0  # never, for cross-entropy
    assert payload["losses"]["baikal"]["pushed_away_correct"] > 0.0
    assert plot.read_bytes()[:8] == PNG_MAGIC
    # Without --loss the compiled loss is used.
    table = invoke("attraction", "--model", path, "--samples", 50).output
    assert "(compiled)" in table


def test_attraction_needs_a_loss_and_a_matching_dataset(saved_model):
    path, bare = saved_model
    result = invoke("attraction", "--model", bare, "--samples", 10)
    assert result.exit_code == 2 and "--loss" in result.output
    result = invoke("attraction", "--model", path, "--dataset", "digits", "--loss", "ce")
    assert result.exit_code == 2 and "--dataset" in result.output
    result = invoke("attraction", "--model", path.with_name("missing.keras"))
    assert result.exit_code == 2


def test_hessian_matches_the_library(saved_model, tmp_path):
    path, _ = saved_model
    plot = tmp_path / "density.png"
    args = ("hessian", "--model", path, "--samples", 64, "--top-k", 2, "--trace-samples", 4)
    payload = stdout_json(invoke(*args, "--json", "--plot", plot))
    record = payload["losses"]["categorical_crossentropy (compiled)"]
    assert record["converged"] and record["eigenvalues"][0] >= record["eigenvalues"][1]
    assert set(record) >= {"trace", "density", "hessian_vector_products", "num_parameters"}
    assert plot.read_bytes()[:8] == PNG_MAGIC
    # The same examples (seed 0's first 64 of the training split) through the library.
    model = keras.saving.load_model(path)
    x, y = load("mnist1d").arrays("train")
    order = np.random.default_rng(0).permutation(len(x))[:64]
    expected = hessian.top_eigenvalues(model, model.loss, (x[order], np.eye(10)[y[order]]), k=2)
    np.testing.assert_allclose(record["eigenvalues"], expected.eigenvalues, rtol=1e-3)


def test_ntk_summary_and_spectrum(saved_model, tmp_path):
    path, _ = saved_model
    plot = tmp_path / "ntk.png"
    payload = stdout_json(invoke("ntk", "--model", path, "--samples", 16, "--json", "--plot", plot))
    assert payload["size"] == 16 and payload["traced"] is True
    np.testing.assert_allclose(payload["lambda_max"], max(payload["eigenvalues"]))
    np.testing.assert_allclose(payload["trace"], sum(payload["eigenvalues"]), rtol=1e-6)
    assert plot.read_bytes()[:8] == PNG_MAGIC
    full = stdout_json(invoke("ntk", "--model", path, "--samples", 4, "--full", "--json"))
    assert full["size"] == 40 and full["traced"] is False


def test_a_dynamical_loss_is_evaluated_at_the_given_step(saved_model):
    path, _ = saved_model
    cyclic = "cyclic:num_classes=10,period=100,amplitude=50"
    args = ("hessian", "--model", path, "--samples", 32, "--loss", cyclic, "--json")
    # Step 0 weighs every class equally (plain cross-entropy); step 50 emphasises class 0 at A.
    plain = stdout_json(invoke(*args, "--loss-step", 0))["losses"][cyclic]["eigenvalues"][0]
    tilted = stdout_json(invoke(*args, "--loss-step", 50))["losses"][cyclic]["eigenvalues"][0]
    same_as_ce = stdout_json(invoke("hessian", "--model", path, "--samples", 32, "--json"))
    ce = same_as_ce["losses"]["categorical_crossentropy (compiled)"]["eigenvalues"][0]
    np.testing.assert_allclose(plain, ce, rtol=1e-3)
    assert abs(tilted - plain) > 1e-3 * plain
    result = invoke("hessian", "--model", path, "--loss", "baikal", "--loss-step", 3)
    assert result.exit_code == 2 and "--loss-step" in result.output
