"""The recipes' shared click options: smoke defaults, the rerun command, usage errors."""

import click
import pytest
from click.testing import CliRunner

from metaloss.cli.recipe_tools import apply_smoke, command_line, float_list, recipe_options
from metaloss.experiments import prepare_output


def _command(seen):
    @click.command()
    @recipe_options("demo_recipe", seeds=3)
    @click.option("--eps", callback=float_list, default="0,0.1")
    @click.option("--jit/--no-jit", default=None)
    @click.option("--model", default="cnn")
    def main(**_):
        ctx = click.get_current_context()
        seen["params"] = apply_smoke(ctx, {"model": "mlp", "seeds": 1})
        seen["command"] = command_line(ctx, "demo_recipe.py")

    return main


@pytest.mark.parametrize(
    ("args", "model", "seeds"),
    [([], "cnn", 3), (["--smoke"], "mlp", 1), (["--smoke", "--model", "wrn"], "wrn", 1)],
)
def test_smoke_fills_only_the_options_left_at_their_defaults(args, model, seeds):
    seen = {}
    assert CliRunner().invoke(_command(seen), args).exit_code == 0
    assert (seen["params"]["model"], seen["params"]["seeds"]) == (model, seeds)
    assert str(seen["params"]["output"]) == "runs/demo_recipe"


def test_command_line_repeats_exactly_what_was_given():
    seen = {}
    args = ["--smoke", "--eps", "0.05,0.1", "--no-jit", "--model", "my model", "--seeds", "2"]
    assert CliRunner().invoke(_command(seen), args).exit_code == 0
    assert seen["command"] == (
        "python recipes/demo_recipe.py --smoke --seeds 2 --eps 0.05,0.1 --no-jit --model 'my model'"
    )


def test_float_list_rejects_text():
    result = CliRunner().invoke(_command({}), ["--eps", "0.1,x"])
    assert result.exit_code == 2 and "--eps" in result.output
    assert float_list(None, None, "1, 2.5") == [1.0, 2.5]


def test_an_output_with_other_settings_is_a_usage_error(tmp_path):
    @click.command()
    @recipe_options("resumable")
    @click.option("--epochs", default=3)
    def main(**_):
        ctx = click.get_current_context()
        prepare_output(ctx.params["output"], apply_smoke(ctx, {}), overwrite=False)

    output = str(tmp_path / "run")
    assert CliRunner().invoke(main, ["--output", output]).exit_code == 0
    assert CliRunner().invoke(main, ["--output", output]).exit_code == 0  # resumes
    result = CliRunner().invoke(main, ["--output", output, "--epochs", "4"])
    assert result.exit_code == 2
    assert "epochs: 3 -> 4" in result.output and "overwrite" in result.output


def test_a_missing_dataset_is_an_error_message_not_a_traceback():
    @click.command()
    @recipe_options("needs_data")
    @click.option("--data-dir", default=None)
    def main(**_):
        raise FileNotFoundError("Dataset 'cifar10' was not found. Searched: /nowhere.")

    result = CliRunner().invoke(main, ["--data-dir", "/nowhere"])
    assert result.exit_code == 1
    assert result.output == "Error: Dataset 'cifar10' was not found. Searched: /nowhere.\n"
