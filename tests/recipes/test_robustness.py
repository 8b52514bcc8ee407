"""recipes/robustness.py at smoke sizes: files, robustness statistics, resuming, bad input."""

import json
import statistics

import pytest
from click.testing import CliRunner

from tests.recipes.helpers import load_recipe

LOSSES = ("cross_entropy", "baikal", "taylor_glo")
GRADIENTS = ("own", "cross_entropy")  # the attack follows each model's own loss, then CE
EPS = [0.0, 0.1, 0.2, 0.3]  # --smoke's grid
DIGITS_TEST_SIZE = 359  # scikit-learn's digits, the fixed 20% test split


@pytest.fixture(scope="module")
def recipe():
    return load_recipe("robustness")


@pytest.fixture(scope="module")
def smoke_run(recipe, tmp_path_factory):
    """One smoke run (2 seeds, 3 losses, FGSM and PGD on all 359 test images), shared."""
    output = tmp_path_factory.mktemp("robustness") / "out"
    args = ["--smoke", "--output", str(output)]
    result = CliRunner().invoke(recipe.main, args)
    return output, args, result


def _runs(output):
    """(loss, seed) -> (results.json, robustness.json) of every run directory."""
    return {
        (loss, seed): (
            json.loads((output / loss / f"seed{seed}" / "results.json").read_text()),
            json.loads((output / loss / f"seed{seed}" / "robustness.json").read_text()),
        )
        for loss in LOSSES
        for seed in (0, 1)
    }


@pytest.mark.slow
def test_smoke_run_writes_results_figures_and_run_files(smoke_run):
    output, _, result = smoke_run
    assert result.exit_code == 0, result.output
    results = json.loads((output / "results.json").read_text())
    assert set(results) == {"title", "command", "settings", "sections"}
    assert results["command"].startswith("python recipes/robustness.py")
    assert results["settings"]["dataset"] == "digits" and results["settings"]["seeds"] == 2
    (section,) = results["sections"]
    assert "markdown" not in section
    assert section["baseline"] == "cross_entropy" and section["metric"] == "test_accuracy"
    assert [c["group"] for c in section["comparisons"]] == list(LOSSES)
    assert {label: len(runs) for label, runs in section["runs"].items()} == dict.fromkeys(LOSSES, 2)
    robustness = section["robustness"]
    assert robustness["attacks"] == ["fgsm", "pgd"] and robustness["eps"] == EPS
    assert robustness["examples"] == DIGITS_TEST_SIZE and robustness["clip"] == [0.0, 1.0]
    assert robustness["gradient_losses"] == list(GRADIENTS)
    attack_figures = [
        name for by_attack in robustness["figures"].values() for name in by_attack.values()
    ]
    for name in [*section["figures"], *attack_figures]:
        data = (output / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    assert robustness["figures"] == {
        g: {a: f"robustness_{a}_{g}.png" for a in ("fgsm", "pgd")} for g in GRADIENTS
    }

    # The TaylorGLO arm's loss is the reference code's, saved so the run can be reproduced.
    from metaloss import losses

    saved = losses.get(output / "taylor_glo_loss.json")
    expected = losses.TaylorGLO.from_reference_code(losses.REFERENCE_CODE_EXAMPLE)
    assert isinstance(saved, losses.TaylorGLO) and saved.theta == pytest.approx(expected.theta)
    assert saved.from_logits

    markdown = (output / "results.md").read_text()
    header = "| loss | " + " | ".join(f"ε={e:g}" for e in EPS) + " |"
    # mean ± std and p tables, for FGSM and PGD, each with both attack gradients
    assert markdown.count(header) == 8
    assert "**FGSM, gradient of each model's own loss**" in markdown
    assert "**PGD, gradient of cross-entropy**" in markdown
    for name in ("robustness_fgsm_own.png", "robustness_pgd_cross_entropy.png"):
        assert f"]({name})" in markdown
    assert "](clean_test_accuracy.png)" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| taylor_glo |")]
    assert len(rows) == 9  # clean comparison, then per gradient and attack a mean ± std and a p row
    assert sum(row.count(" ± ") == len(EPS) for row in rows) == 4


@pytest.mark.slow
def test_robustness_statistics_come_from_the_runs_files(smoke_run):
    from metaloss.analysis.statistics import welch_t_test

    output, _, result = smoke_run
    assert result.exit_code == 0, result.output
    curves = json.loads((output / "results.json").read_text())["sections"][0]["robustness"]
    curves = curves["curves"]
    runs = _runs(output)
    for (_, seed), (record, robust) in runs.items():
        assert robust["seed"] == seed and robust["examples"] == DIGITS_TEST_SIZE
        for gradient in GRADIENTS:
            for attack in ("fgsm", "pgd"):
                accuracy = robust["accuracy"][gradient][attack]
                assert len(accuracy) == len(EPS)
                # --samples (10 000) covers the test set, and ε = 0 leaves the inputs clean: the
                # accuracy there is the run's own clean test accuracy (a count over 359 images).
                assert accuracy[0] == pytest.approx(record["test_accuracy"], abs=1e-6)
        # ε = 0.3 along cross-entropy's gradient does break an MLP on digits.
        assert robust["accuracy"]["cross_entropy"]["fgsm"][-1] < record["test_accuracy"] - 0.3
    # Cross-entropy's own loss is cross-entropy: its two attacks are one attack.
    for seed in (0, 1):
        accuracy = runs["cross_entropy", seed][1]["accuracy"]
        assert accuracy["own"]["fgsm"] == pytest.approx(accuracy["cross_entropy"]["fgsm"])
    for gradient, attack in [(g, a) for g in GRADIENTS for a in ("fgsm", "pgd")]:
        for loss in LOSSES:
            entry = curves[gradient][attack][loss]
            per_seed = [runs[loss, seed][1]["accuracy"][gradient][attack] for seed in (0, 1)]
            assert entry["per_seed"] == per_seed and entry["n"] == 2
            for i in range(len(EPS)):
                values = [curve[i] for curve in per_seed]
                assert entry["mean"][i] == pytest.approx(statistics.fmean(values))
                assert entry["std"][i] == pytest.approx(statistics.stdev(values))
                if loss != "cross_entropy":
                    baseline = [
                        runs["cross_entropy", s][1]["accuracy"][gradient][attack][i] for s in (0, 1)
                    ]
                    p_value = welch_t_test(values, baseline).p_value
                    assert entry["p_vs_baseline"][i] == pytest.approx(p_value)
            assert ("p_vs_baseline" in entry) == (loss != "cross_entropy")


@pytest.mark.slow
def test_a_second_run_resumes_and_changed_settings_exit_2(recipe, smoke_run):
    output, args, first = smoke_run
    assert first.exit_code == 0, first.output
    before = json.loads((output / "results.json").read_text())
    runs = [output / loss / f"seed{s}" for loss in LOSSES for s in (0, 1)]
    files = [run / name for run in runs for name in ("model.keras", "robustness.json")]
    stamps = {f: f.stat().st_mtime_ns for f in files}

    second = CliRunner().invoke(recipe.main, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("finished earlier") == 6
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # neither retrained nor attacked
    after = json.loads((output / "results.json").read_text())
    assert after["sections"][0]["robustness"] == before["sections"][0]["robustness"]
    assert after["sections"][0]["comparisons"] == before["sections"][0]["comparisons"]

    changed = CliRunner().invoke(recipe.main, [*args, "--pgd-steps", "5"])
    assert changed.exit_code == 2
    assert "pgd_steps" in changed.output and "--overwrite" in changed.output
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--attacks", "fgsm,cw"),
        ("--eps", "0,-0.1"),
        ("--eps", "0,nan"),
        ("--samples", "0"),
        ("--gradient-loss", "mse"),
        ("--model", "transformer"),
        ("--model", "mlp:depth=3"),
        ("--dataset", "imagenet"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(recipe, tmp_path, option, value):
    result = CliRunner().invoke(recipe.main, ["--smoke", "--output", str(tmp_path), option, value])
    assert result.exit_code == 2 and option in result.output
    assert not (tmp_path / "settings.json").exists()


def test_an_unknown_taylorglo_loss_is_a_usage_error(recipe, tmp_path):
    missing = tmp_path / "best_loss.json"
    result = CliRunner().invoke(
        recipe.main, ["--smoke", "--output", str(tmp_path / "o"), "--taylorglo", str(missing)]
    )
    assert result.exit_code == 2 and "--taylorglo" in result.output


def test_a_changed_taylorglo_file_is_refused(recipe, tmp_path):
    import click

    from metaloss import losses

    theta = [0, 1, 2, 3, 4, 5, 6, 7]
    given = losses.save(losses.TaylorGLO(theta, from_logits=True), tmp_path / "best_loss.json")
    output = tmp_path / "out"
    output.mkdir()
    path = recipe._taylor_glo_loss({"taylorglo": str(given)}, output)
    assert losses.get(path).theta == pytest.approx(theta) and losses.get(path).from_logits
    assert recipe._taylor_glo_loss({"taylorglo": str(given)}, output) == path  # unchanged: fine
    losses.save(losses.TaylorGLO([*theta[:7], 8], from_logits=True), given)
    with pytest.raises(click.UsageError, match="--taylorglo"):
        recipe._taylor_glo_loss({"taylorglo": str(given)}, output)


def test_the_attacked_examples_are_one_fixed_draw(recipe):
    import numpy as np

    from metaloss.data import load

    p = {"dataset": "digits", "validation_split": 0.1, "data_dir": None, "samples": 100}
    x, y = recipe._test_examples(p)
    again_x, again_y = recipe._test_examples({**p, "validation_split": 0.2})
    assert x.shape == (100, 8, 8, 1) and np.array_equal(x, again_x) and np.array_equal(y, again_y)
    test_x, test_y = load("digits").arrays("test")
    whole_x, whole_y = recipe._test_examples({**p, "samples": 10_000})
    assert np.array_equal(whole_x, test_x) and np.array_equal(whole_y, test_y)
    # Every drawn example is a test example, none twice.
    flat = {row.tobytes() for row in test_x.reshape(len(test_x), -1)}
    drawn = [row.tobytes() for row in x.reshape(100, -1)]
    assert set(drawn) <= flat and len(set(drawn)) == 100
