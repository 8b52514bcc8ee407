"""Loading a recipe script (``recipes/<name>.py``) as a module, for click's CliRunner."""

import importlib.util
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str):
    """The module of ``recipes/<name>.py`` (recipes are scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up there
    spec.loader.exec_module(module)
    return module
