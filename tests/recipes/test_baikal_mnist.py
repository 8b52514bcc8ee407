"""recipes/baikal_mnist.py at smoke sizes: the files it writes, resuming, changed settings."""

import json

import pytest
from click.testing import CliRunner

from tests.recipes.helpers import load_recipe

pytestmark = pytest.mark.slow


def test_smoke_run_writes_results_and_resumes(tmp_path):
    main = load_recipe("baikal_mnist").main
    output = tmp_path / "baikal"
    args = ["--smoke", "--output", str(output), "--steps", "20", "--fractions", "1,0.5"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    results = json.loads((output / "results.json").read_text())
    assert results["command"].startswith("python recipes/baikal_mnist.py")
    assert "--steps 20" in results["command"] and "--fractions 1,0.5" in results["command"]
    assert results["settings"]["dataset"] == "digits"  # --smoke's offline data
    assert [s["title"] for s in results["sections"]] == [
        "100% of the training data",
        "50% of the training data",
    ]
    for section, fraction in zip(results["sections"], ("1", "0.5"), strict=True):
        runs = section["runs"]
        assert set(runs) == {"cross_entropy", "baikal"}
        assert all(len(r) == 2 and r[0]["steps"] == 20 for r in runs.values())
        baikal = next(c for c in section["comparisons"] if c["group"] == "baikal")
        accuracies = [r["test_accuracy"] for r in runs["baikal"]]
        assert baikal["mean"] == pytest.approx(sum(accuracies) / 2)
        assert 0 <= baikal["vs_baseline"]["p_value"] <= 1
        for figure in section["figures"]:
            assert (output / figure).stat().st_size > 0
        assert (output / f"baikal_f{fraction}" / "seed1" / "model.keras").is_file()
    markdown = (output / "results.md").read_text()
    assert markdown.count("| cross_entropy | 2 |") == 2 and "| baikal | 2 |" in markdown

    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("finished earlier") == 8
    again = json.loads((output / "results.json").read_text())
    assert again["sections"][0]["comparisons"] == results["sections"][0]["comparisons"]

    changed = CliRunner().invoke(main, [*args[:-2], "--fractions", "0.5"])
    assert changed.exit_code == 2
    assert "--overwrite" in changed.output and "fractions" in changed.output


def test_bad_fraction_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        load_recipe("baikal_mnist").main,
        ["--smoke", "--output", str(tmp_path), "--fractions", "1.5"],
    )
    assert result.exit_code == 2 and "--fractions" in result.output
    assert not (tmp_path / "settings.json").exists()
