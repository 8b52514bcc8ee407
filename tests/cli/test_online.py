"""`metaloss online`: files, table, reuse of the learned loss, and its bad input."""

import json

import keras
import numpy as np
from click.testing import CliRunner

from metaloss.cli import main
from metaloss.losses import LearnedLoss

from ..conftest import run_python


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_online_writes_learned_loss_comparison_and_figures_and_the_loss_trains(tmp_path):
    out = tmp_path / "o"
    common = ["--dataset", "spiral", "--model", "mlp:hidden=[16]", "--epochs", 2]
    result = invoke("online", *common, "--init-steps", 3, "--output", out)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split()[:2] == ["loss", "status"]
    assert table[2].startswith("adalfl") and table[3].startswith("cross_entropy")
    for name in (
        "learned_loss.json",
        "model.keras",
        "snapshots.json",
        "history.json",
        "results.json",
        "comparison.json",
        "learned_loss_shapes.png",
        "training_curves.png",
        "cross_entropy/results.json",
    ):
        assert (out / name).is_file(), name
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison) == {"adalfl", "cross_entropy"}
    assert comparison["adalfl"]["epochs"] == comparison["cross_entropy"]["epochs"] == 2
    history = json.loads((out / "history.json").read_text())
    assert len(history["init_meta_loss"]) == 3 and len(history["meta_loss"]) == 2
    assert [s["epoch"] for s in json.loads((out / "snapshots.json").read_text())] == [0, 1, 2]
    # The saved model carries the final learned loss, the same as learned_loss.json.
    learned = LearnedLoss.from_config(json.loads((out / "learned_loss.json").read_text())["config"])
    model = keras.models.load_model(out / "model.keras")
    for got, want in zip(model.loss.get_weights(), learned.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    again = invoke(
        "train", *common, "--loss", out / "learned_loss.json", "--output", tmp_path / "t"
    )
    assert again.exit_code == 0, again.output
    assert "completed" in again.stdout


def test_online_runs_ml3_beside_adalfl_and_ml3_keeps_its_offline_loss(tmp_path):
    out = tmp_path / "o"
    common = ["--dataset", "spiral", "--model", "mlp:hidden=[16]", "--epochs", 2]
    result = invoke(
        "online",
        *common,
        "--init-steps",
        4,
        "--method",
        "adalfl",
        "--method",
        "ml3",
        "--output",
        out,
    )
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[2:5]] == [
        "adalfl",
        "ml3",
        "cross_entropy",
    ]
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison) == ["adalfl", "ml3", "cross_entropy"]
    assert comparison["ml3"]["loss"] == "ml3" and comparison["ml3"]["epochs"] == 2
    for name in ("learned_loss.json", "snapshots.json", "learned_loss_shapes.png"):
        assert (out / name).is_file() and (out / "ml3" / name).is_file(), name
    # ML3's loss is frozen after the offline phase: every snapshot holds the same weights,
    # the ones its offline phase shares with AdaLFL's (same seed), while AdaLFL's move on.
    ml3 = json.loads((out / "ml3" / "snapshots.json").read_text())
    adalfl = json.loads((out / "snapshots.json").read_text())
    assert [s["epoch"] for s in ml3] == [0, 1, 2]
    assert all(s["config"]["weights"] == ml3[0]["config"]["weights"] for s in ml3)
    np.testing.assert_allclose(
        np.concatenate([np.ravel(w) for w in ml3[0]["config"]["weights"]]),
        np.concatenate([np.ravel(w) for w in adalfl[0]["config"]["weights"]]),
        rtol=1e-6,
    )
    assert adalfl[-1]["config"]["weights"] != adalfl[0]["config"]["weights"]
    history = json.loads((out / "ml3" / "history.json").read_text())
    assert len(history["init_meta_loss"]) == 4 and "meta_loss" not in history


def test_model_trained_online_reloads_with_its_learned_loss_in_a_fresh_process(tmp_path):
    out = tmp_path / "o"
    args = ["--dataset", "spiral", "--model", "mlp:hidden=[8]", "--epochs", 1, "--init-steps", 0]
    assert invoke("online", *args, "--no-baseline", "--output", out).exit_code == 0
    x = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
    model = keras.models.load_model(out / "model.keras")
    expected = float(model.loss([0, 1, 2, 0, 1], model(x)))
    code = f"""
import keras, numpy as np
import metaloss  # registers metaloss>LearnedLoss
model = keras.models.load_model({str(out / "model.keras")!r})
x = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
print(repr(float(model.loss([0, 1, 2, 0, 1], model(x)))))
"""
    assert float(run_python(code).strip().splitlines()[-1]) == expected
    assert not (out / "cross_entropy").exists()


def test_online_refuses_to_overwrite_and_checks_options(tmp_path):
    out = tmp_path / "o"
    (out).mkdir()
    (out / "results.json").write_text("{}")
    result = invoke("online", "--dataset", "spiral", "--output", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = invoke("online", "--dataset", "spiral", "--init-steps", -1, "--output", tmp_path / "x")
    assert result.exit_code == 2 and "--init-steps" in result.output
    assert not (tmp_path / "x").exists()
    result = invoke("online", "--resume", "--overwrite", "--output", tmp_path / "y")
    assert result.exit_code == 2 and "--resume and --overwrite" in result.output


def test_online_resume_keeps_checkpoints_and_continues_a_finished_run_unchanged(tmp_path):
    out = tmp_path / "o"
    common = ["online", "--dataset", "spiral", "--model", "mlp:hidden=[8]", "--epochs", 2]
    first = invoke(*common, "--init-steps", 3, "--resume", "--no-baseline", "--output", out)
    assert first.exit_code == 0, first.output
    assert (out / "checkpoints" / "initialization.json").is_file()
    assert (out / "checkpoints" / "state-2.json").is_file()
    before = json.loads((out / "results.json").read_text())
    # Everything is in the checkpoints: neither phase trains again, the record is the same.
    again = invoke(*common, "--init-steps", 3, "--resume", "--no-baseline", "--output", out)
    assert again.exit_code == 0, again.output
    after = json.loads((out / "results.json").read_text())
    assert after["test_accuracy"] == before["test_accuracy"]
    assert after["history"] == before["history"]


def test_inner_lr_and_offline_step_reach_the_offline_phase(tmp_path):
    common = ["online", "--dataset", "spiral", "--epochs", 1, "--init-steps", 3, "--no-baseline"]
    weights = {}
    for name, extra in (
        ("small", ["--inner-lr", 0.01]),
        ("large", ["--inner-lr", 0.5]),
        ("fresh", ["--offline-step", "fresh_optimizer"]),
    ):
        result = invoke(*common, *extra, "--output", tmp_path / name)
        assert result.exit_code == 0, result.output
        offline = json.loads((tmp_path / name / "snapshots.json").read_text())[0]
        weights[name] = np.concatenate([np.ravel(w) for w in offline["config"]["weights"]])
    # Different inner steps give different offline meta-gradients, hence different loss nets.
    assert not np.allclose(weights["small"], weights["large"])
    assert not np.allclose(weights["small"], weights["fresh"])
    bad = invoke(*common, "--inner-lr", 0, "--output", tmp_path / "bad")
    assert bad.exit_code == 2 and "--inner-lr" in bad.output
