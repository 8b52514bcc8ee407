"""Every recipe runs as a plain script, and its --help answers without importing TensorFlow."""

import subprocess
import sys

import pytest

from tests.conftest import run_python
from tests.recipes.helpers import RECIPES

SCRIPTS = sorted(path.stem for path in RECIPES.glob("*.py"))


def test_the_five_paper_recipes_are_there():
    assert SCRIPTS == ["adalfl", "baikal_mnist", "dynamical", "robustness", "taylorglo_cifar"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_is_fast_and_lists_the_shared_options(name):
    code = f"""
import sys
sys.argv = ["{name}.py", "--help"]
import runpy
try:
    runpy.run_path({str(RECIPES / (name + ".py"))!r}, run_name="__main__")
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("tensorflow" in sys.modules)
"""
    out = run_python(code)
    for option in ("--output", "--smoke", "--seeds", "--overwrite"):
        assert option in out
    assert out.strip().splitlines()[-1] == "False"


def test_a_script_reports_usage_errors_with_exit_code_2(tmp_path):
    process = subprocess.run(
        [sys.executable, str(RECIPES / "baikal_mnist.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert process.returncode == 2 and "--seeds" in process.stderr
