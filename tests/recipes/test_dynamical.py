"""recipes/dynamical.py: the spiral and CIFAR smoke runs, their files, resuming, bad input."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from tests.recipes.helpers import load_recipe

dynamical = load_recipe("dynamical")


def invoke(*args):
    return CliRunner().invoke(dynamical.main, [str(a) for a in args])


def succeeded(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


# --- Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--widths", "0,8"], "--widths"),
        (["--widths", "8,x"], "--widths"),
        (["--widths", "8,8"], "--widths"),
        (["--lr", "0"], "--lr"),
        (["--amplitude", "0.5"], "--amplitude"),
        (["--ntk-points", "301"], "--ntk-points"),
        (["--periods", "5"], "--periods"),  # a CIFAR option on the spiral
        (["--experiment", "cifar10", "--track-every", "5"], "--track-every"),
        (["--experiment", "cifar10", "--amplitudes", "0.5,2"], "--amplitudes"),
        (["--experiment", "cifar10", "--model", "wrn", "--depth", "15"], "--depth"),
        (["--experiment", "cifar10", "--schedule", "nope"], "--schedule"),
        (["--experiment", "cifar10", "--dataset", "nope"], "--dataset"),
        (["--experiment", "mnist"], "--experiment"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(tmp_path, args, option):
    result = invoke("--smoke", "--output", tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert not (tmp_path / "out").exists()  # rejected before anything was written


# --- The spiral smoke run, end to end --------------------------------------------------------


@pytest.fixture(scope="module")
def spiral(tmp_path_factory):
    """The spiral smoke run, then the same command again (which must resume)."""
    output = tmp_path_factory.mktemp("dynamical") / "spiral"
    first = succeeded(invoke("--smoke", "--output", output))
    hessian = sorted(output.glob("width*/*/seed*/hessian.json"))
    stamps = {path: path.stat().st_mtime_ns for path in hessian}
    payload = json.loads((output / "results.json").read_text())
    second = succeeded(invoke("--smoke", "--output", output))
    return {
        "output": output,
        "first": first,
        "second": second,
        "stamps": stamps,
        "payload": payload,
        "again": json.loads((output / "results.json").read_text()),
    }


def width_sections(payload):
    return [s for s in payload["sections"] if "comparisons" in s]


@pytest.mark.slow
def test_spiral_writes_results_with_one_section_per_width_and_a_summary(spiral):
    payload, output = spiral["payload"], spiral["output"]
    assert payload["settings"]["experiment"] == "spiral"
    assert payload["settings"]["widths"] == [8, 32] and payload["settings"]["steps"] == 80
    assert "periods" not in payload["settings"]  # CIFAR options are not recorded for the spiral
    assert payload["command"].startswith("python recipes/dynamical.py")
    sections = width_sections(payload)
    assert [s["width"] for s in sections] == [8, 32]
    for section in sections:
        assert section["baseline"] == "cross_entropy" and section["metric"] == "test_accuracy"
        assert set(section["runs"]) == {"cross_entropy", "cyclic"}
        for runs in section["runs"].values():
            assert [r["seed"] for r in runs] == [0, 1] and all(r["steps"] == 80 for r in runs)
        groups = {c["group"]: c for c in section["comparisons"]}
        cyclic = [r["test_accuracy"] for r in section["runs"]["cyclic"]]
        assert groups["cyclic"]["mean"] == pytest.approx(sum(cyclic) / 2)
        assert "p_value" in groups["cyclic"]["vs_baseline"]
        assert section["two_over_lr"] == 2.0 and section["learning_rate"] == 1.0
        assert section["loss"].startswith("cyclic:num_classes=3,period=20,amplitude=5")
        assert section["parameters"] == 6 * section["width"] + 3  # 2→w→3 with biases
        assert len(section["ntk_indices"]) == 10
    summary = payload["sections"][-1]
    assert summary["title"] == "Summary over widths"
    assert [row["width"] for row in summary["rows"]] == [8, 32]
    for row, section in zip(summary["rows"], sections, strict=True):
        groups = {c["group"]: c for c in section["comparisons"]}
        assert row["best_arm"] == "cyclic"
        assert row["baseline_test"] == groups["cross_entropy"]["mean"]
        assert row["difference"] == pytest.approx(
            groups["cyclic"]["mean"] - groups["cross_entropy"]["mean"]
        )
    # Every figure named in results.json exists, is a non-empty PNG and is shown in results.md.
    markdown = (output / "results.md").read_text()
    figures = [name for section in payload["sections"] for name in section["figures"]]
    assert {"width8_eigenvalues.png", "width32_train_accuracy.png", "cyclic_weights.png"} <= set(
        figures
    )
    for name in figures:
        path = output / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
        assert f"({name})" in markdown


@pytest.mark.slow
def test_spiral_markdown_states_the_table_and_the_bursts(spiral):
    markdown = (spiral["output"] / "results.md").read_text()
    payload = spiral["payload"]
    assert markdown.startswith("# Dynamical loss vs cross-entropy on the spiral")
    assert "### Width 8 (51 parameters)" in markdown and "### Width 32" in markdown
    assert "| group | seeds | mean ± std | Δ vs baseline | p (Welch) |" in markdown
    for section in width_sections(payload):
        for tracked in section["tracked"]["cyclic"]:
            periods = tracked["periods"]
            above = sum(row["above_edge"] for row in periods)
            assert (
                f"**cyclic, seed 0**: λ_max went above 2/η = 2 in {above} of {len(periods)}"
                in markdown
            )
            peak = max(row["lambda_max"] for row in periods)
            assert f"Its largest value was {peak:.3g}" in markdown
    assert "| period | emphasised class | max λ_max | at step | in period | > 2/η |" in markdown
    assert "python recipes/dynamical.py --output" in markdown and "--smoke" in markdown


@pytest.mark.slow
def test_tracked_runs_save_their_hessian_history_and_the_period_summary_matches_it(spiral):
    output = spiral["output"]
    # Only seed 0 of each arm is tracked (--track-seeds 1).
    assert sorted(p.relative_to(output).as_posix() for p in spiral["stamps"]) == [
        f"width{w}/{arm}/seed0/hessian.json" for w in (32, 8) for arm in ("cross_entropy", "cyclic")
    ]
    for section in width_sections(spiral["payload"]):
        width = section["width"]
        for arm, records in section["tracked"].items():
            (record,) = records
            assert record["seed"] == 0
            saved = json.loads((output / f"width{width}/{arm}/seed0/hessian.json").read_text())
            assert saved == record["history"]
            assert saved["steps"] == list(range(0, 81, 10))
            assert all(len(values) == 3 for values in saved["eigenvalues"])  # top-3
            assert saved["lambda_max"] == [values[0] for values in saved["eigenvalues"]]
            assert len(saved["ntk_max"]) == len(saved["steps"])
            assert all(v > 0 for v in saved["lambda_max"] + saved["ntk_max"])
            # Recompute each period's peak from the saved history: records in (pT, (p+1)T],
            # and step 0 in period 0.
            periods = record["periods"]
            assert [row["period"] for row in periods] == [0, 1, 2, 3]
            for row in periods:
                p = row["period"]
                inside = [
                    (value, step)
                    for step, value in zip(saved["steps"], saved["lambda_max"], strict=True)
                    if 20 * p < step <= 20 * (p + 1) or (p == 0 and step == 0)
                ]
                value, step = max(inside, key=lambda pair: pair[0])
                assert row["lambda_max"] == value and row["step"] == step
                assert row["fraction"] == (step - 20 * p) / 20
                assert row["above_edge"] == (value > 2.0)
                ntk = [
                    n
                    for s, n in zip(saved["steps"], saved["ntk_max"], strict=True)
                    if 20 * p < s <= 20 * (p + 1) or (p == 0 and s == 0)
                ]
                assert row["ntk_max"] == max(ntk)
            # The cyclic loss emphasises classes 0, 1, 2, then its last period is plain.
            expected = [0, 1, 2, None] if arm == "cyclic" else [None] * 4
            assert [row["emphasised_class"] for row in periods] == expected


@pytest.mark.slow
def test_spiral_runs_are_float64_and_start_from_the_same_hessian(spiral):
    import keras

    import metaloss.losses  # noqa: F401  (registers the zoo for loading)

    run = spiral["output"] / "width8" / "cyclic" / "seed0"
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert {w.dtype for w in model.weights} == {"float64"}
    loss = json.loads((run / "loss.json").read_text())
    assert loss["class_name"] == "CyclicClassEmphasis"
    assert loss["config"]["final_plain_period"] and loss["config"]["num_periods"] == 4
    # Same seed, same initial weights, and at step 0 the cyclic weights are Γ = (1, 1, 1): the
    # two arms' first Hessians agree; then the losses differ and so do the trajectories.
    section = width_sections(spiral["payload"])[0]
    ce = section["tracked"]["cross_entropy"][0]["history"]["lambda_max"]
    cyclic = section["tracked"]["cyclic"][0]["history"]["lambda_max"]
    assert cyclic[0] == pytest.approx(ce[0], rel=1e-6)
    assert cyclic[-1] != pytest.approx(ce[-1], rel=1e-3)


@pytest.mark.slow
def test_a_second_identical_command_resumes_every_run(spiral):
    second = spiral["second"]
    assert second.count("finished earlier") == 8  # 2 widths × 2 arms × 2 seeds
    assert spiral["first"].count("finished earlier") == 0
    # Nothing was retrained: the Hessian histories were not rewritten, the numbers are the same.
    for path, stamp in spiral["stamps"].items():
        assert path.stat().st_mtime_ns == stamp
    before, after = spiral["payload"], spiral["again"]
    assert before["sections"] == after["sections"]


@pytest.mark.slow
def test_other_settings_in_the_same_output_exit_2_unless_overwrite(spiral):
    output = spiral["output"]
    settings = (output / "settings.json").read_text()
    result = invoke("--smoke", "--output", output, "--amplitude", "6")
    assert result.exit_code == 2
    assert "amplitude" in result.output and "--overwrite" in result.output
    assert (output / "settings.json").read_text() == settings
    assert set(spiral["stamps"]) == set(output.glob("width*/*/seed*/hessian.json"))


# --- The CIFAR sweep, on digits -------------------------------------------------------------------


@pytest.mark.slow
def test_cifar_smoke_sweeps_periods_and_amplitudes_against_cross_entropy(tmp_path):
    # One seed keeps it quick: the arms still compare, without a t-test (a dash in the table).
    output = tmp_path / "cifar"
    text = succeeded(
        invoke("--experiment", "cifar10", "--smoke", "--output", output, "--widths", "4",
               "--periods", "3", "--amplitudes", "2,5", "--epochs", "1", "--seeds", "1")
    )  # fmt: skip
    assert "cyclic_T3_A5" in text
    payload = json.loads((output / "results.json").read_text())
    assert payload["settings"]["dataset"] == "digits" and payload["settings"]["model"] == "cnn"
    assert "track_every" not in payload["settings"]
    (section, summary) = payload["sections"]
    assert section["model"] == "cnn:filters=[4,8],hidden=16"
    assert list(section["runs"]) == ["cross_entropy", "cyclic_T3_A2", "cyclic_T3_A5"]
    assert [s["arm"] for s in section["sweep"]] == ["cyclic_T3_A2", "cyclic_T3_A5"]
    # The training digits (after the 10% validation split) in batches of 256; one epoch of
    # periods of 3 steps, the last one plain.
    from metaloss.data import load

    steps = math.ceil(load("digits", validation_split=0.1).num_examples["train"] / 256)
    assert section["steps_per_epoch"] == steps
    assert section["sweep"][1]["loss"] == (
        "cyclic:num_classes=10,period=3,amplitude=5,final_plain_period=true,"
        f"num_periods={math.ceil(steps / 3)}"
    )
    groups = {c["group"]: c for c in section["comparisons"]}
    for label, runs in section["runs"].items():
        (run,) = runs
        assert run["seed"] == 0 and run["epochs"] == 1 and run["steps"] == steps
        assert (output / "width4" / label / "seed0" / "results.json").is_file()
        assert groups[label]["mean"] == run["test_accuracy"]
        assert "vs_baseline" not in groups[label]  # one seed: no t-test
    best = max(("cyclic_T3_A2", "cyclic_T3_A5"), key=lambda g: groups[g]["mean"])
    row = summary["rows"][0]
    assert row["best_arm"] == best and row["p_value"] is None
    for name in section["figures"] + summary["figures"]:
        assert (output / name).stat().st_size > 1000
    assert "cyclic_weights_T3.png" in summary["figures"]
    markdown = (output / "results.md").read_text()
    assert "| cyclic_T3_A5 | 1 |" in markdown
