"""The analysis benchmark runs end to end at smoke sizes (its numbers live in BENCHMARKS.md)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_every_row():
    process = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_analysis.py"), "--quick"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    for row in (
        "forward_over_reverse",
        "reverse_over_reverse",
        "Lanczos / power",
        "loop / jacobian",
    ):
        assert row in process.stdout
