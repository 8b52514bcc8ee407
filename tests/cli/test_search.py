"""`metaloss search` through click: a tiny search, refusals with exit code 2, resume rules."""

from __future__ import annotations

import json

from click.testing import CliRunner

from metaloss.cli import main

TINY = [
    "--dataset", "spiral", "--model", "mlp:hidden=[16]", "--generations", "2",
    "--population", "3", "--budget-epochs", "1", "--batch-size", "64", "--verbose", "0",
]  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_search_writes_best_loss_table_report_and_train_accepts_it(tmp_path):
    directory = tmp_path / "s"
    result = invoke("search", *TINY, "--directory", directory)
    assert result.exit_code == 0, result.output
    assert "trial  generation  val acc" in result.output
    best = directory / "best_loss.json"
    assert json.loads(best.read_text())["class_name"] == "TaylorGLO"
    assert (directory / "report" / "report.md").is_file()
    assert (directory / "logs").is_dir()
    trained = invoke(
        "train", "--dataset", "spiral", "--model", "mlp:hidden=[16]", "--loss", best,
        "--epochs", 1, "--output", tmp_path / "train",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "TaylorGLO" in json.loads((tmp_path / "train" / "loss.json").read_text())["class_name"]

    # An existing search is never silently replaced.
    again = invoke("search", *TINY, "--directory", directory)
    assert again.exit_code == 2 and "--resume" in again.output
    # Resuming with a different setting is refused and names it; unchanged, it trains nothing.
    changed = invoke("search", *TINY[:-2], "--seed", 7, "--directory", directory, "--resume")
    assert changed.exit_code == 2 and "--seed=7" in changed.output
    trials = sorted((directory / "trials").glob("trial_*/candidate.json"))
    stamps = [p.stat().st_mtime_ns for p in trials]
    resumed = invoke("search", "--directory", directory, "--resume", "--verbose", 0)
    assert resumed.exit_code == 0, resumed.output
    assert sorted((directory / "trials").glob("trial_*/candidate.json")) == trials
    assert [p.stat().st_mtime_ns for p in trials] == stamps  # nothing retrained


def test_refusals_exit_with_usage_errors(tmp_path):
    both = invoke("search", *TINY, "--directory", tmp_path / "x", "--resume", "--overwrite")
    assert both.exit_code == 2 and "exclude each other" in both.output
    missing = invoke("search", *TINY, "--directory", tmp_path / "none", "--resume")
    assert missing.exit_code == 2 and "holds no search" in missing.output
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    refused = invoke("search", *TINY, "--directory", precious, "--overwrite")
    assert refused.exit_code == 2 and "refusing to delete" in refused.output
    assert (precious / "thesis.tex").exists()
    bad = invoke("search", *TINY, "--directory", tmp_path / "b", "--population", 1)
    assert bad.exit_code == 2 and "--population" in bad.output


def test_a_search_where_every_candidate_diverges_says_so(tmp_path):
    # A learning rate of 1e38 sends every candidate's weights to infinity at once.
    result = invoke("search", *TINY, "--lr", "1e38", "--directory", tmp_path / "d")
    assert result.exit_code == 1, result.output
    assert "no candidate completed training" in result.output
    assert not (tmp_path / "d" / "best_loss.json").exists()


def test_robust_objective_is_saved_reported_and_resumable_from_older_searches(tmp_path):
    directory = tmp_path / "s"
    robust = ["--objective", "robust", "--attack-eps", "0.2"]
    result = invoke("search", *TINY, *robust, "--directory", directory)
    assert result.exit_code == 0, result.output
    assert "fitness under FGSM (eps=0.2, cross_entropy gradient)" in result.output
    task = json.loads((directory / "search.json").read_text())["task"]
    assert (task["objective"], task["attack_eps"], task["attack_loss"]) == (
        "robust",
        0.2,
        "cross_entropy",
    )
    assert "FGSM examples (eps=0.2" in (directory / "report" / "report.md").read_text()
    changed = invoke("search", *TINY, "--attack-eps", "0.3", "--directory", directory, "--resume")
    assert changed.exit_code == 2 and "--attack-eps" in changed.output
    # A search saved before these options existed resumes with their defaults.
    settings = json.loads((directory / "search.json").read_text())
    for key in ("objective", "attack_eps", "attack_loss"):
        del settings["task"][key]
    (directory / "search.json").write_text(json.dumps(settings))
    resumed = invoke("search", "--directory", directory, "--resume", "--verbose", 0)
    assert resumed.exit_code == 0, resumed.output


def test_parallel_candidates_trains_a_generation_together(tmp_path):
    directory = tmp_path / "p"
    result = invoke("search", *TINY, "--parallel-candidates", 3, "--directory", directory)
    assert result.exit_code == 0, result.output
    assert "3 at a time" in result.output
    assert (directory / "best_loss.json").exists()
    assert len(list((directory / "trials").glob("trial_*/candidate.json"))) >= 1
    bad = invoke("search", *TINY, "--parallel-candidates", 0, "--directory", tmp_path / "b")
    assert bad.exit_code == 2 and "--parallel-candidates" in bad.output


def test_fitness_seeds_and_reevaluation_are_saved_shown_and_kept_on_resume(tmp_path):
    directory = tmp_path / "r"
    options = ["--fitness-seeds", 2, "--reevaluate-top", 2, "--reevaluate-seeds", 1]
    options += ["--rejected", "ranked"]
    result = invoke("search", *TINY, *options, "--directory", directory)
    assert result.exit_code == 0, result.output
    assert "fitness: mean of 2 seeds (0..1)" in result.output
    assert "the best 2 re-evaluated on 1 fresh seeds" in result.output
    assert "val acc (search)  fresh seeds" in result.output and "* crowned" in result.output
    settings = json.loads((directory / "search.json").read_text())
    assert settings["task"]["fitness_seeds"] == 2 and settings["rejected"] == "ranked"
    assert settings["reevaluate_top"] == 2 and settings["reevaluate_seeds"] == 1
    state = json.loads((directory / "reevaluation.json").read_text())
    assert state["complete"] and state["seeds"] == [2]
    changed = invoke("search", "--directory", directory, "--resume", "--fitness-seeds", 3)
    assert changed.exit_code == 2 and "--fitness-seeds=3" in changed.output
    resumed = invoke("search", "--directory", directory, "--resume", "--verbose", 0)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((directory / "reevaluation.json").read_text()) == state


def test_evomal_method_searches_expressions_and_resumes(tmp_path):
    directory = tmp_path / "evomal"
    args = ["--method", "evomal", *TINY, "--local-search-steps", 3, "--directory", directory]
    result = invoke("search", *args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("EvoMAL search on spiral")
    assert "rejected by the rejection protocol" in result.output
    assert "reused an equivalent candidate's score" in result.output
    settings = json.loads((directory / "search.json").read_text())
    assert settings["method"] == "evomal" and settings["local_search_steps"] == 3
    best = json.loads((directory / "best_loss.json").read_text())
    assert best["class_name"] == "SymbolicLoss" and best["config"]["expression"]
    assert "`" in (directory / "report" / "report.md").read_text()  # expressions in the table
    # --resume keeps the method and trains nothing again.
    trials = sorted((directory / "trials").glob("trial_*/candidate.json"))
    stamps = [p.stat().st_mtime_ns for p in trials]
    resumed = invoke("search", "--directory", directory, "--resume", "--verbose", 0)
    assert resumed.exit_code == 0, resumed.output
    assert "EvoMAL search on spiral" in resumed.output
    assert [p.stat().st_mtime_ns for p in trials] == stamps


def test_options_of_the_other_method_are_usage_errors(tmp_path):
    taylor_only = invoke(
        "search", "--method", "evomal", *TINY, "--directory", tmp_path / "a", "--no-invariant"
    )
    assert taylor_only.exit_code == 2 and "--invariant is an option of --method taylorglo" in (
        taylor_only.output
    )
    evomal_only = invoke("search", *TINY, "--directory", tmp_path / "b", "--no-rejection")
    assert evomal_only.exit_code == 2 and "--method evomal" in evomal_only.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
