"""Experiment reports: a comparison section's statistics, figures and files."""

import json
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from metaloss.experiments import comparison_section, format_table, mean_curve, write_results


@dataclass
class FakeRun:
    test_accuracy: float
    history: dict = field(default_factory=dict)

    def to_dict(self):
        return {"test_accuracy": self.test_accuracy}


def test_format_table_aligns_columns_by_hand():
    table = format_table(["loss", "acc", "p"], [["ce", 0.5, None], ["baikal", 0.61234, 3]])
    assert table.splitlines() == [
        "loss    acc     p",
        "------  ------  -",
        "ce      0.5000  -",
        "baikal  0.6123  3",
    ]


def test_mean_curve_averages_over_runs_cut_to_the_shortest():
    histories = [{"v": [1.0, 2.0, 3.0]}, {"v": [3.0, 4.0]}, {"other": [9.0]}]
    assert mean_curve(histories, "v") == [2.0, 3.0]
    assert mean_curve(histories, "missing") == []


def test_comparison_section_reports_welch_p_and_writes_figures(tmp_path, capsys):
    baseline = [0.50, 0.52, 0.49, 0.51, 0.50]
    other = [0.55, 0.56, 0.53, 0.57, 0.58]
    curve = {"val_accuracy": [0.1, 0.2, 0.3]}
    arms = {
        "cross_entropy": [FakeRun(a, curve) for a in baseline],
        "baikal": [FakeRun(a, curve) for a in other],
    }
    section = comparison_section(
        tmp_path, title="Baikal vs CE", arms=arms, baseline="cross_entropy", name="toy"
    )
    by_group = {c["group"]: c for c in section["comparisons"]}
    expected = stats.ttest_ind(other, baseline, equal_var=False)
    test = by_group["baikal"]["vs_baseline"]
    assert np.isclose(test["p_value"], expected.pvalue, rtol=1e-9)
    assert np.isclose(test["difference"], np.mean(other) - np.mean(baseline))
    assert section["figures"] == ["toy_test_accuracy.png", "toy_validation_accuracy.png"]
    assert all((tmp_path / f).is_file() for f in section["figures"])
    assert "Baikal vs CE" in capsys.readouterr().out

    path = write_results(
        tmp_path, title="Toy", command="python x.py", settings={"out": tmp_path}, sections=[section]
    )
    payload = json.loads(path.read_text())
    assert payload["settings"] == {"out": str(tmp_path)}
    assert "markdown" not in payload["sections"][0]
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("# Toy\n") and "python x.py" in markdown
    assert not list(tmp_path.glob("*.partial"))
