"""Loading a recipe script (``recipes/<name>.py``) as a module, for click's CliRunner."""

import importlib.util
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str):
    """The module of ``recipes/<name>.py`` (recipes are scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def recipe():
    return load_recipe
