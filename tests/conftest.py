"""Test-wide settings: quiet TensorFlow, deterministic seeds, a helper for fresh processes."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest


@pytest.fixture(autouse=True)
def _seed():
    """Each test starts from the same global seeds (Python, NumPy, TensorFlow/Keras)."""
    import keras

    keras.utils.set_random_seed(1234)


def run_python(code: str, *, env: dict | None = None, cwd=None, timeout: int = 600) -> str:
    """Runs ``code`` in a fresh interpreter and returns its stdout; fails the test on error."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    process = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
    if process.returncode != 0:
        pytest.fail(f"subprocess failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return process.stdout
