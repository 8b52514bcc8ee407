"""recipes/adalfl.py at smoke sizes: one section per task, its files, resuming, bad input."""

import json
import statistics

import numpy as np
import pytest
from click.testing import CliRunner

from tests.recipes.helpers import load_recipe

# Two tasks, the second with model arguments (a ':' and brackets inside the task).
TASKS = {"digits:mlp": "digits_mlp", "digits:mlp:hidden=[32]": "digits_mlp_hidden=_32_"}


@pytest.fixture(scope="module")
def recipe():
    return load_recipe("adalfl")


@pytest.fixture(scope="module")
def smoke_run(recipe, tmp_path_factory):
    """One smoke run over two tasks (2 seeds, 2 epochs, 5 offline steps), shared."""
    output = tmp_path_factory.mktemp("adalfl") / "out"
    args = ["--smoke", "--output", str(output)]
    for task in TASKS:
        args += ["--task", task]
    return output, args, CliRunner().invoke(recipe.main, args)


def _png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


@pytest.mark.slow
def test_smoke_run_writes_one_section_per_task(smoke_run):
    from metaloss import losses

    output, _, result = smoke_run
    assert result.exit_code == 0, result.output
    results = json.loads((output / "results.json").read_text())
    assert results["settings"]["tasks"] == list(TASKS)  # explicit --task wins over --smoke's
    assert results["settings"]["init_steps"] == 5 and results["settings"]["optimizer"] == "adam"
    assert "--task 'digits:mlp:hidden=[32]'" in results["command"]
    sections = results["sections"]
    assert [s["task"] for s in sections] == list(TASKS)
    assert [s["title"] for s in sections] == ["digits / mlp", "digits / mlp:hidden=[32]"]
    markdown = (output / "results.md").read_text()
    for section, name in zip(sections, TASKS.values(), strict=True):
        assert section["baseline"] == "cross_entropy"
        runs = section["runs"]
        assert list(runs) == ["cross_entropy", "ml3", "adalfl"]
        assert (
            [r["seed"] for r in runs["adalfl"]]
            == [0, 1]
            == [r["seed"] for r in runs["cross_entropy"]]
        )
        assert all(r["loss"] == "adalfl" for r in runs["adalfl"])
        assert all(r["loss"] == "ml3" for r in runs["ml3"])
        # What the online phase adds: AdaLFL against ML3, recomputed here with SciPy.
        from scipy import stats

        gain = stats.ttest_ind(
            [r["test_accuracy"] for r in runs["adalfl"]],
            [r["test_accuracy"] for r in runs["ml3"]],
            equal_var=False,
        )
        if np.isfinite(gain.pvalue):
            assert section["adalfl_vs_ml3"]["p_value"] == pytest.approx(gain.pvalue)
        # The same budget for both arms: 2 epochs of the same batches.
        steps = {r["steps"] for arm in runs.values() for r in arm}
        assert len(steps) == 1 and all(r["epochs"] == 2 for arm in runs.values() for r in arm)
        for comparison in section["comparisons"]:
            accuracy = [r["test_accuracy"] for r in runs[comparison["group"]]]
            assert comparison["mean"] == pytest.approx(statistics.fmean(accuracy))
            assert comparison["std"] == pytest.approx(statistics.stdev(accuracy))
        adalfl = next(c for c in section["comparisons"] if c["group"] == "adalfl")
        assert 0 <= adalfl["vs_baseline"]["p_value"] <= 1
        figures = [*section["figures"], section["learned_loss_figure"]]
        assert figures == [
            f"{name}_test_accuracy.png",
            f"{name}_validation_accuracy.png",
            f"{name}_learned_loss.png",
        ]
        assert all(_png(output / f) for f in figures)
        assert f"]({name}_learned_loss.png)" in markdown
        for seed in (0, 1):
            run = output / name / "adalfl" / f"seed{seed}"
            assert isinstance(losses.get(run / "learned_loss.json"), losses.LearnedLoss)
            snapshots = json.loads((run / "snapshots.json").read_text())
            assert [s["epoch"] for s in snapshots][-1] == 2 and snapshots[0]["step"] == 0
            history = json.loads((run / "history.json").read_text())
            assert len(history["init_meta_loss"]) == 5 and len(history["meta_loss"]) == 2
            assert (output / name / "cross_entropy" / f"seed{seed}" / "model.keras").is_file()
    assert markdown.count("### ") == 2
    for arm in ("cross_entropy", "ml3", "adalfl"):
        assert markdown.count(f"| {arm} | 2 |") == 2
    assert markdown.count("The online phase (AdaLFL − ML3") == 2


@pytest.mark.slow
def test_a_second_run_resumes_and_changed_settings_exit_2(recipe, smoke_run):
    output, args, first = smoke_run
    assert first.exit_code == 0, first.output
    before = json.loads((output / "results.json").read_text())
    models = sorted(output.glob("*/*/seed*/model.keras"))
    assert len(models) == 12  # 2 tasks x 3 arms x 2 seeds
    stamps = {m: m.stat().st_mtime_ns for m in models}

    second = CliRunner().invoke(recipe.main, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("finished earlier") == 12
    assert {m: m.stat().st_mtime_ns for m in models} == stamps
    after = json.loads((output / "results.json").read_text())
    for old, new in zip(before["sections"], after["sections"], strict=True):
        assert new["comparisons"] == old["comparisons"] and new["runs"] == old["runs"]

    changed = CliRunner().invoke(recipe.main, [*args, "--meta-lr", "0.01"])
    assert changed.exit_code == 2
    assert "meta_lr" in changed.output and "--overwrite" in changed.output
    assert {m: m.stat().st_mtime_ns for m in models} == stamps


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--task", "imagenet:mlp"),
        ("--task", "digits"),
        ("--task", "digits:transformer"),
        ("--task", "digits:mlp:depth=3"),
        ("--optimizer", "rmsprop"),
        ("--momentum", "1.5"),
        ("--init-steps", "-1"),
        ("--methods", "ce,maml"),
        ("--methods", ","),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(recipe, tmp_path, option, value):
    result = CliRunner().invoke(recipe.main, ["--smoke", "--output", str(tmp_path), option, value])
    assert result.exit_code == 2 and option in result.output
    assert not (tmp_path / "settings.json").exists()


def test_a_task_given_twice_is_a_usage_error(recipe, tmp_path):
    args = ["--smoke", "--output", str(tmp_path), "--task", "digits:mlp", "--task", "digits:mlp"]
    result = CliRunner().invoke(recipe.main, args)
    assert result.exit_code == 2 and "--task" in result.output and "twice" in result.output


def test_task_directories_are_file_name_safe(recipe):
    wide = "cifar100:wrn:depth=28,width=10"
    assert recipe.task_directory(wide) == "cifar100_wrn_depth=28_width=10"
    assert recipe.task_directory("cifar10:allcnn_c") == "cifar10_allcnn_c"
