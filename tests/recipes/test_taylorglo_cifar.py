"""recipes/taylorglo_cifar.py at smoke sizes: search + training, invariant ablation, attraction."""

import json

import click
import pytest
from click.testing import CliRunner

from metaloss import losses
from tests.recipes.helpers import load_recipe


def _invoke(main, *args):
    result = CliRunner().invoke(main, ["--smoke", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_paper_settings_fill_the_defaults():
    module = load_recipe("taylorglo_cifar")
    params = {
        "model": "resnet20",
        "experiment": "data-utilisation",
        "subset_fraction": None,
        **dict.fromkeys(("budget_epochs", "epochs", "schedule", "weight_decay")),
    }
    resolved = module._resolve(params)
    # The TaylorGLO papers (arXiv 2002.00059): ResNets get 20 of 200 epochs, the "resnet"
    # schedule and weight decay 1e-4;
    # data-utilisation runs use 10% of the training data.
    assert (resolved["budget_epochs"], resolved["epochs"]) == (20, 200)
    assert (resolved["schedule"], resolved["weight_decay"]) == ("resnet", 1e-4)
    assert resolved["subset_fraction"] == 0.1
    wrn = module._resolve({**params, "model": "wrn", "experiment": "main"})
    assert wrn["model_spec"] == "wrn:depth=16,width=8,dropout=0.3"
    assert wrn["subset_fraction"] == 1.0


def test_a_model_without_paper_settings_needs_its_budget(tmp_path):
    result = CliRunner().invoke(
        load_recipe("taylorglo_cifar").main, ["--model", "mlp", "--output", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--budget-epochs" in result.output
    # The invariant ablation never trains fully: a search budget is all it needs.
    module = load_recipe("taylorglo_cifar")
    params = {
        "model": "mlp",
        "experiment": "invariant",
        "subset_fraction": None,
        "budget_epochs": 3,
        **dict.fromkeys(("epochs", "schedule", "weight_decay")),
    }
    assert module._resolve(params)["budget_epochs"] == 3
    with pytest.raises(click.BadParameter, match="no paper setting"):
        module._resolve({**params, "experiment": "attraction"})


@pytest.mark.slow
def test_main_searches_then_compares_and_resumes(tmp_path):
    main = load_recipe("taylorglo_cifar").main
    output = tmp_path / "main"
    options = ("--generations", "1", "--fitness-seeds", "2", "--reevaluate-top", "2")
    _invoke(main, "--output", str(output), *options, "--reevaluate-seeds", "1")
    results = json.loads((output / "results.json").read_text())
    (section,) = results["sections"]
    assert set(section["runs"]) == {"cross_entropy", "taylor_glo"}
    best = output / "search" / "best_loss.json"
    assert isinstance(losses.get(best), losses.TaylorGLO)
    assert (output / "search" / "report" / "report.md").is_file()
    assert (output / "search" / "reevaluation.json").is_file()
    # The TaylorGLO arm trained with the searched loss, on seeds after the search's 0, 1 and
    # its re-evaluation's 2.
    assert sorted(p.name for p in (output / "taylor_glo").iterdir()) == ["seed3", "seed4"]
    run = output / "taylor_glo" / "seed3"
    assert json.loads((run / "loss.json").read_text()) == json.loads(best.read_text())
    assert "candidates trained" in (output / "results.md").read_text()
    for figure in section["figures"]:
        assert (output / figure).stat().st_size > 0
    again = _invoke(main, "--output", str(output), *options, "--reevaluate-seeds", "1")
    assert again.output.count("finished earlier") == 4


@pytest.mark.slow
def test_invariant_ablation_compares_searches_at_equal_budget(tmp_path):
    output = tmp_path / "invariant"
    _invoke(
        load_recipe("taylorglo_cifar").main,
        *("--experiment", "invariant", "--output", str(output), "--generations", "1"),
    )
    (section,) = json.loads((output / "results.json").read_text())["sections"]
    assert set(section["best_score"]) == {"invariant_on", "invariant_off"}
    # Without the invariant every proposed candidate trains; with it, rejected ones do not.
    assert section["candidates_trained"]["invariant_off"] == [4, 4]
    assert all(n <= 4 for n in section["candidates_trained"]["invariant_on"])
    for label in ("invariant_on", "invariant_off"):
        for k, score in enumerate(section["best_score"][label]):
            trials = output / label / f"search{k}" / "trials"
            assert trials.is_dir()
            assert section["best_so_far"][label][k][-1] == pytest.approx(score)
    assert (output / "invariant_best_so_far.png").stat().st_size > 0
    # Cut off at the paired search's number of trainings, a search can only do worse.
    cut = section["best_score_equal_training"]
    assert cut["invariant_on"] == section["best_score"]["invariant_on"]
    full = section["best_score"]["invariant_off"]
    assert all(c <= f for c, f in zip(cut["invariant_off"], full, strict=True))


@pytest.mark.slow
def test_attraction_records_pushed_away_fractions(tmp_path):
    output = tmp_path / "attraction"
    main = load_recipe("taylorglo_cifar").main
    _invoke(main, "--experiment", "attraction", "--output", str(output))
    (section,) = json.loads((output / "results.json").read_text())["sections"]
    final = section["pushed_away_correct_final"]
    # Cross-entropy never pushes a correctly classified sample away (arXiv 2010.00788, its
    # attraction analysis).
    assert final["cross_entropy"] == [0.0, 0.0]
    for label, values in final.items():
        for seed, value in enumerate(values):
            saved = json.loads(
                (output / "attraction" / label / f"seed{seed}" / "attraction.json").read_text()
            )
            assert saved["pushed_away_correct"][-1] == value
            assert len(saved["epoch"]) == 3  # before training and after each of 2 epochs
    # Without --loss or a search in this output, the reference code's TaylorGLO loss is used.
    assert isinstance(losses.get(output / "taylor_glo_reference.json"), losses.TaylorGLO)
    assert (output / "attraction.png").stat().st_size > 0
