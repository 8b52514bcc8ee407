"""The fitness-noise, rejected-rule and demo-task benchmarks run end to end at smoke sizes
(their numbers live in BENCHMARKS.md)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tool: str) -> str:
    process = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), "--quick"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout


def test_fitness_noise_prints_a_rank_correlation_per_variant():
    output = _run("bench_fitness_noise.py")
    for variant in ("R=1", "R=3"):
        row = re.search(rf"^{re.escape(variant)}\s+\d+\s+(-?\d\.\d\d|nan)\s", output, re.M)
        assert row is not None, output
        assert row.group(1) == "nan" or -1.0 <= float(row.group(1)) <= 1.0


def test_rejected_rule_compares_both_rules_with_welchs_p():
    output = _run("bench_rejected_rule.py")
    assert "worst   crowned loss on fresh seeds:" in output
    assert "ranked  crowned loss on fresh seeds:" in output
    assert re.search(r"ranked - worst: [+-]\d\.\d{4}, Welch's p = ", output), output


def test_demo_task_probe_compares_every_loss_with_cross_entropy_on_validation():
    output = _run("bench_demo_task.py")
    assert "validation accuracy over seeds 2000..2001" in output
    assert len(re.findall(r"vs cross_entropy, p = ", output)) == 4
