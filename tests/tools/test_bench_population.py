"""The population benchmark runs end to end at smoke sizes (its numbers live in BENCHMARKS.md)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_a_row_per_task():
    process = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench_population.py"),
            "--quick",
            "--tasks",
            "mnist1d/mlp,digits/cnn",
            "--jit",
            "off",
            "--tables",
            "steps",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    # The step table traces and runs a population of each task (grouped convolutions or
    # patches, whichever the device can differentiate); the throughput table is longer.
    for row in ("| mnist1d | mlp | off |", "| digits | cnn | off |"):
        assert row in process.stdout
