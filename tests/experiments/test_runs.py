"""Experiment training runs: the settings passed to train_experiment, the per-seed line."""

from types import SimpleNamespace

from metaloss.experiments import run_printer, training_run


def test_training_run_passes_the_training_options_and_lets_overrides_win():
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


def test_run_printer_prints_one_line_per_seed(capsys):
    record = SimpleNamespace(seed=3, seconds=1.25, status="diverged", test_accuracy=0.5)
    run_printer("baikal")(record, False)
    run_printer("baikal")(record, True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == "baikal seed 3: test accuracy 0.5000 [diverged] (1.2 s)".split()
    assert lines[1].endswith("[diverged] (finished earlier)")
