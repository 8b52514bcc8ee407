"""The recipes' shared options: smoke defaults, the rerun command, settings checks on resume."""

import json

import click
import pytest
from click.testing import CliRunner

from metaloss.cli.recipe_tools import (
    apply_smoke,
    command_line,
    float_list,
    prepare_output,
    recipe_options,
)


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


def test_prepare_output_refuses_other_settings_unless_overwritten(tmp_path):
    output = tmp_path / "run"
    kept = prepare_output(output, {"seeds": 2, "output": output, "verbose": 1}, overwrite=False)
    assert kept == {"seeds": 2}
    assert json.loads((output / "settings.json").read_text()) == {"seeds": 2}
    (output / "seed0").mkdir()
    # Same settings (verbosity does not count): accepted, and nothing is deleted.
    prepare_output(output, {"seeds": 2, "verbose": 0}, overwrite=False)
    assert (output / "seed0").is_dir()
    # An option the first run did not know about is no difference; a changed one is.
    prepare_output(output, {"seeds": 2, "new_option": 1}, overwrite=False)
    with pytest.raises(click.UsageError, match=r"seeds: 2 -> 3.*--overwrite"):
        prepare_output(output, {"seeds": 3}, overwrite=False)
    prepare_output(output, {"seeds": 3}, overwrite=True)
    assert not (output / "seed0").exists()
    assert json.loads((output / "settings.json").read_text()) == {"seeds": 3}


def test_training_run_passes_the_training_options_and_lets_overrides_win():
    from metaloss.cli.recipe_tools import training_run
    from metaloss.training import train_experiment

    params = {"epochs": 3, "learning_rate": 0.05, "seeds": 5, "output": "runs/x", "steps": 70}
    run = training_run(params, "digits", "mlp", "baikal", steps=None, momentum=0.0)
    assert run.func is train_experiment and run.args == ("digits", "mlp", "baikal")
    # Recipe-only options (seeds, output) stay out; seed and output come from run_seeds.
    assert run.keywords == {
        "epochs": 3,
        "learning_rate": 0.05,
        "steps": None,
        "momentum": 0.0,
        "resume": True,
    }


def test_a_missing_dataset_is_an_error_message_not_a_traceback():
    @click.command()
    @recipe_options("needs_data")
    @click.option("--data-dir", default=None)
    def main(**_):
        raise FileNotFoundError("Dataset 'cifar10' was not found. Searched: /nowhere.")

    result = CliRunner().invoke(main, ["--data-dir", "/nowhere"])
    assert result.exit_code == 1
    assert result.output == "Error: Dataset 'cifar10' was not found. Searched: /nowhere.\n"
