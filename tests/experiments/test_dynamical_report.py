"""The dynamical-loss report: width summaries, burst descriptions, thinned histories, float64."""

import keras
import pytest

from metaloss.experiments.dynamical_report import (
    describe_tracked,
    float_precision,
    summary_row,
    summary_section,
    thin_histories,
)


def _section():
    return {
        "comparisons": [
            {"group": "cross_entropy", "mean": 0.50},
            {
                "group": "cyclic_a",
                "mean": 0.55,
                "vs_baseline": {"difference": 0.05, "p_value": 0.01},
            },
            {
                "group": "cyclic_b",
                "mean": 0.60,
                "vs_baseline": {"difference": 0.10, "p_value": 0.2},
            },
        ],
        "runs": {
            "cross_entropy": [{"train_accuracy": 0.7}, {"train_accuracy": 0.9}],
            "cyclic_a": [{"train_accuracy": 1.0}],
            "cyclic_b": [{"train_accuracy": 0.6}, {"train_accuracy": 0.8}],
        },
    }


def test_summary_row_picks_the_best_arm_by_mean_test_accuracy():
    row = summary_row(_section(), width=10, parameters=63)
    assert row == {
        "width": 10,
        "parameters": 63,
        "baseline_test": 0.50,
        "best_arm": "cyclic_b",
        "best_test": 0.60,
        "difference": 0.10,
        "p_value": 0.2,
        "baseline_train": pytest.approx(0.8),
        "best_train": pytest.approx(0.7),
    }
    section = summary_section([row], figures=["w.png"], lead="Lead.")
    assert section["rows"] == [row] and "| 10 | 63 |" in section["markdown"]
    assert "Lead." in section["markdown"] and "](w.png)" in section["markdown"]


def test_describe_tracked_counts_the_periods_above_the_edge():
    periods = [
        {"period": 0, "emphasised_class": 0, "lambda_max": 2.5, "step": 90, "fraction": 0.9,
         "above_edge": True, "ntk_max": 10.0},
        {"period": 1, "emphasised_class": 1, "lambda_max": 1.5, "step": 150, "fraction": 0.5,
         "above_edge": False, "ntk_max": 30.0},
    ]  # fmt: skip
    words, table = describe_tracked("cyclic", 0, periods, edge=2.0)
    assert "above 2/η = 2 in 1 of 2 periods" in words
    assert "2.5 at step 90 (90% of period 0)" in words and "from 10 (period 0) to 30" in words
    assert len(table.strip().splitlines()) == 4  # header, rule, two rows


def test_thin_histories_keeps_every_kth_point():
    section = {"runs": {"a": [{"history": {"loss": list(range(2500)), "acc": list(range(2500))}}]}}
    thin_histories(section, max_points=1000)
    run = section["runs"]["a"][0]
    assert run["history_stride"] == 3 and run["history"]["loss"][:3] == [0, 3, 6]
    assert len(run["history"]["loss"]) == 834


def test_float_precision_restores_keras_settings():
    before = keras.config.floatx()
    with float_precision(True):
        assert keras.config.floatx() == "float64"
        assert keras.layers.Dense(1).dtype == "float64"
    assert keras.config.floatx() == before
    with float_precision(False):
        assert keras.config.floatx() == before
