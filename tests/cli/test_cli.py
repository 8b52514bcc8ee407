"""The command line through click's CliRunner (and a fresh process for the import check)."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from metaloss.cli import main
from metaloss.losses import Baikal

from ..conftest import run_python


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_does_not_import_tensorflow():
    code = """
import sys
from metaloss.cli import main
try:
    main(["--help"])
except SystemExit as stop:
    assert stop.code == 0
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""
    out = run_python(code)
    assert "train" in out and "datasets" in out
    assert out.strip().splitlines()[-1] == "False False"


def test_losses_lists_the_zoo():
    result = invoke("losses")
    assert result.exit_code == 0
    for name in ("baikal", "taylor_glo", "cyclic_class_emphasis", "cross_entropy"):
        assert name in result.output


def test_datasets_says_what_is_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    result = invoke("datasets")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[2:]}
    assert "yes (built in)" in lines["mnist1d"] and "yes (built in)" in lines["spiral"]
    assert "no: needs cifar-10-python.tar.gz" in lines["cifar10"]


def test_train_writes_model_loss_history_results_and_figure(tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--dataset",
        "spiral",
        "--model",
        "mlp:hidden=[16]",
        "--loss",
        "baikal",
        "--epochs",
        2,
        "--seed",
        0,
        "--output",
        out,
        "--batch-size",
        32,
    )
    assert result.exit_code == 0, result.output
    assert "test acc" in result.output and "baikal" in result.output
    for name in ("model.keras", "loss.json", "history.json", "results.json", "training_curves.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 2 and results["status"] == "completed"
    assert isinstance(keras.saving.load_model(out / "model.keras").loss, Baikal)
    # The saved loss file is a valid --loss, and an existing run is protected.
    again = invoke(
        "train", "--dataset", "spiral", "--loss", out / "loss.json", "--epochs", 1, "--output", out
    )
    assert again.exit_code == 2 and "--overwrite" in again.output
    replaced = invoke(
        "train",
        "--dataset",
        "spiral",
        "--loss",
        out / "loss.json",
        "--epochs",
        1,
        "--output",
        out,
        "--overwrite",
    )
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "results.json").read_text())["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--loss", "nope"], "--loss"),
        (["--loss", "taylor_glo:theta=[1,2]"], "--loss"),
        (["--epochs", "0"], "--epochs"),
        (["--dataset", "imagenet"], "--dataset"),
        (["--model", "transformer"], "--model"),
        (["--subset-fraction", "0"], "--subset-fraction"),
        (["--resume", "--overwrite"], "--resume"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(args, option, tmp_path):
    result = invoke("train", "--output", tmp_path / "x", *args)
    assert result.exit_code == 2
    assert option in result.output


def test_missing_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("metaloss.data.archives.download", _no_network)
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(tmp_path),
            "--epochs",
            "1",
            "--output",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 1
    assert "cifar-10-python.tar.gz" in result.output


def _no_network(name, *args, **kwargs):
    raise OSError("network disabled in tests")


@pytest.mark.slow
def test_demo_searches_then_compares_over_seeds(tmp_path):
    result = invoke(
        "demo", "--output", tmp_path, "--generations", 1, "--population", 3,
        "--budget-epochs", 1, "--epochs", 1, "--seeds", 2, "--fitness-seeds", 2,
        "--reevaluate-top", 2, "--reevaluate-seeds", 1, "--verbose", 0,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained 3 at a time" in result.output  # a whole generation together by default
    best = tmp_path / "search" / "best_loss.json"
    assert best.is_file() and (tmp_path / "search" / "report" / "report.md").is_file()
    assert (tmp_path / "search" / "reevaluation.json").is_file()
    # Search seeds 0, 1; re-evaluation seed 2; the comparison on seeds 3 and 4.
    for label in ("cross_entropy", "taylor_glo"):
        for seed in (3, 4):
            assert (tmp_path / label / f"seed{seed}" / "results.json").is_file()
    assert "seeds 3..4 (disjoint from the search's 0..2)" in result.output
    # The mean ± std comparison table and the difference with its p-value.
    assert "±" in result.output and "minus cross-entropy" in result.output
    assert "Welch's t-test over 2 seeds each: p = " in result.output
    assert f"metaloss train --loss {best}" in result.output
    assert (tmp_path / "validation_accuracy.png").is_file()


@pytest.mark.slow
def test_demo_json_is_one_object_on_stdout_with_welchs_p(tmp_path):
    from scipy import stats

    result = CliRunner().invoke(
        main,
        [str(a) for a in (
            "demo", "--output", tmp_path, "--generations", 1, "--population", 8,
            "--budget-epochs", 1, "--epochs", 1, "--seeds", 3, "--seed", 2,
            "--reevaluate-top", 0, "--fitness-seeds", 1, "--json",
        )],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # progress went to stderr
    assert "1/2 TaylorGLO search" in result.stderr
    assert payload["search_seed"] == 2 and payload["seeds"] == [3, 4, 5]
    for arm in ("cross_entropy", "searched"):
        values = payload[arm]["values"]
        assert len(values) == 3
        assert payload[arm]["mean"] == pytest.approx(np.mean(values))
        assert payload[arm]["std"] == pytest.approx(np.std(values, ddof=1))
    searched, ce = payload["searched"]["values"], payload["cross_entropy"]["values"]
    assert payload["difference"] == pytest.approx(np.mean(searched) - np.mean(ce))
    if np.std(searched) + np.std(ce) > 0:
        expected = stats.ttest_ind(searched, ce, equal_var=False).pvalue
        assert payload["p_value"] == pytest.approx(expected, rel=1e-6)
    assert json.loads((tmp_path / "comparison.json").read_text()) == payload
