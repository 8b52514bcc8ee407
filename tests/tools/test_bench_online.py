"""The online-step benchmark runs end to end at smoke sizes (its numbers live in BENCHMARKS.md)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_every_variant():
    process = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_online.py"), "--quick", "--model", "mlp"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    for row in (
        "plain, learned loss",
        "ML3 step (loss frozen)",
        "AdaLFL online step",
        "offline step, sgd",
        "offline step, fresh_optimizer",
        "/ plain cross-entropy step",
    ):
        assert row in process.stdout
