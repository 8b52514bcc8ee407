"""`metaloss attack`: a robustness table and curve for saved models, and its bad input."""

import json

from click.testing import CliRunner

from metaloss.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def trained(tmp_path, name, loss):
    out = tmp_path / name
    args = ["--dataset", "digits", "--model", "mlp:hidden=[16]", "--epochs", 3, "--loss", loss]
    assert invoke("train", *args, "--output", out).exit_code == 0
    return out / "model.keras"


def test_attack_prints_a_table_and_writes_the_curve(tmp_path):
    ce, baikal = trained(tmp_path, "ce", "cross_entropy"), trained(tmp_path, "baikal", "baikal")
    out = tmp_path / "attack"
    common = ["--model", ce, "--model", baikal, "--dataset", "digits", "--split", "test"]
    result = invoke("attack", *common, "--eps", "0,0.1,0.2", "--samples", 100, "--output", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert lines[header].split() == ["model", "eps=0", "eps=0.1", "eps=0.2"]
    assert [line.split()[0] for line in lines[header + 2 : header + 4]] == ["ce", "baikal"]
    assert (out / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["eps"] == [0.0, 0.1, 0.2] and set(saved["accuracy"]) == {"ce", "baikal"}
    for curve in saved["accuracy"].values():
        assert curve[0] >= curve[1] >= curve[2]

    pgd = invoke(
        "attack", *common, "--eps", "0.1", "--attack", "pgd", "--steps", 3, "--samples", 50,
        "--gradient-loss", "own", "--output", out, "--json",
    )  # fmt: skip
    assert pgd.exit_code == 0, pgd.output
    payload = json.loads(pgd.stdout)
    assert payload["attack"] == "pgd" and payload["steps"] == 3
    assert payload["gradient_loss"] == "own"


def test_bad_eps_and_steps_are_usage_errors(tmp_path):
    model = trained(tmp_path, "ce", "cross_entropy")
    common = ["--model", model, "--dataset", "digits", "--output", tmp_path / "a"]
    for eps in ("0,-0.1", "0,abc", "nan"):
        result = invoke("attack", *common, "--eps", eps)
        assert result.exit_code == 2 and "--eps" in result.output, eps
    result = invoke("attack", *common, "--attack", "pgd", "--eps", "0,0.05", "--step-size", 0.1)
    assert result.exit_code == 2 and "--step-size" in result.output
    result = invoke("attack", "--model", model, "--dataset", "mnist1d")
    assert result.exit_code == 2 and "--dataset" in result.output
    assert not (tmp_path / "a").exists()
