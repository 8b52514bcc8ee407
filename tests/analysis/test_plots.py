"""Figures: loss shapes against hand-computed values, and every plot writes a real PNG."""

import math

import keras
import numpy as np
import pytest

from metaloss import losses
from metaloss.analysis import (
    loss_shape,
    plot_comparison,
    plot_history,
    plot_loss_shapes,
    plot_search_progress,
)
from metaloss.analysis.plots import (
    learning_rule,
    plot_attraction,
    plot_cyclic_weights,
    plot_eigenvalue_trajectories,
    plot_gamma_curves,
    plot_hessian_density,
    plot_ntk_spectrum,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
POINTS = [0.05, 0.2, 0.5, 0.9, 0.99]


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    assert not list(path.parent.glob("partial.*"))


@pytest.mark.parametrize("num_classes", [2, 3, 10])
@pytest.mark.parametrize("from_logits", [False, True])
def test_cross_entropy_shape_is_minus_log_p(num_classes, from_logits):
    # Cross-entropy of a one-hot label is -log of the true class's probability, whatever the
    # other classes get; with from_logits the inputs are log p, which softmax maps back to p.
    loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    values = loss_shape(loss, POINTS, num_classes=num_classes)
    np.testing.assert_allclose(values, -np.log(POINTS), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [False, True])
def test_baikal_shape_is_hand_computed(from_logits):
    # Baikal, -(1/K) Σ_i (log y_i - x_i / y_i), with y = (p, (1-p)/(K-1), ...) and x = e_0:
    # -(1/K) (log p - 1/p + (K-1) log((1-p)/(K-1))).
    k, p = 4, np.asarray(POINTS)
    expected = -(np.log(p) - 1 / p + (k - 1) * np.log((1 - p) / (k - 1))) / k
    loss = losses.get("baikal", from_logits=from_logits)
    np.testing.assert_allclose(loss_shape(loss, POINTS, num_classes=k), expected, rtol=1e-5)


def test_loss_shape_takes_plain_functions_and_checks_its_inputs():
    values = loss_shape(losses.baikal, [0.5], num_classes=2)
    assert values.shape == (1,) and values[0] == pytest.approx(1 + math.log(2), rel=1e-6)
    ce = keras.losses.CategoricalCrossentropy()
    with pytest.raises(ValueError, match="Invalid value for argument `num_classes`"):
        loss_shape(ce, [0.5], num_classes=1)
    for bad in ([0.0, 0.5], [1.0], []):
        with pytest.raises(ValueError, match="Invalid value for argument `probabilities`"):
            loss_shape(ce, bad, num_classes=3)


def test_plot_loss_shapes_writes_a_png(tmp_path):
    theta = [0.0, 0.0, 0.0, -2.0, 0.0, 2.0, 0.0, 0.0]
    named = {
        "taylor_glo (logits)": losses.TaylorGLO(theta, from_logits=True),
        "cross_entropy": losses.get("cross_entropy"),
        "baikal": losses.get("baikal"),
    }
    path = plot_loss_shapes(named, tmp_path / "shapes.png", num_classes=3, title="shapes")
    assert path == tmp_path / "shapes.png"
    assert_png(path)


def test_plot_search_progress_reads_report_and_oracle_records(tmp_path):
    records = [
        {"generation": 0, "best_score": 0.4, "median_score": 0.3, "rejected": 1, "failed": 0},
        {"generation": 1, "best_score": None, "median_score": None, "rejected": 2, "failed": 3},
        {"generation": 2, "best_score": 0.5, "median_score": 0.45, "rejected": 0, "failed": 1},
    ]
    assert_png(plot_search_progress(records, tmp_path / "a.png", title="progress"))
    # The oracle's own history records (fitness = -accuracy) plot too, as does no generation.
    oracle = [{"generation": 0, "best_fitness": -0.4, "median_fitness": -0.3, "rejected": 0}]
    assert_png(plot_search_progress(oracle, tmp_path / "b.png"))
    assert_png(plot_search_progress([], tmp_path / "c.png"))
    with pytest.raises(ValueError, match="Invalid value for argument `generations`"):
        plot_search_progress([{"best_score": 0.4}], tmp_path / "d.png")


def test_history_and_comparison_still_write_pngs(tmp_path):
    history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.7], "val_loss": [1.1, 0.6]}
    assert_png(plot_history(history, tmp_path / "h.png", title="run"))
    assert_png(plot_comparison({"a": {"val_accuracy": [0.5, 0.6]}}, tmp_path / "c.png"))


# -- learning rules and the cyclic weights ---------------------------------------------------


def test_learning_rule_hand_values():
    # Baikal, γ = 1/y + x/y²: at p = 0.5 with 3 classes the others get 0.25.
    target, other = learning_rule("baikal", [0.5], num_classes=3)
    np.testing.assert_allclose([target[0], other[0]], [2 + 4, 4.0])
    # MSE, γ = 2(x - y).
    target, other = learning_rule("mse", [0.2, 0.6], num_classes=2)
    np.testing.assert_allclose(target, [1.6, 0.8])
    np.testing.assert_allclose(other, [-1.6, -0.8])
    with pytest.raises(ValueError, match="argument `probabilities`"):
        learning_rule("mse", [1.0], num_classes=2)


def test_gamma_curves_and_cyclic_weights_write_pngs(tmp_path):
    named = {"CE": "cross_entropy", "Baikal": "baikal", "TaylorGLO": "taylor_glo_reference"}
    assert_png(plot_gamma_curves(named, tmp_path / "gamma.png", num_classes=10))
    cyclic = losses.CyclicClassEmphasis(3, period=100, amplitude=20)
    assert_png(plot_cyclic_weights(cyclic, tmp_path / "weights.png"))
    assert_png(plot_cyclic_weights("cyclic:num_classes=4,period=5,amplitude=3", tmp_path / "w.png"))
    with pytest.raises(ValueError, match="argument `loss`"):
        plot_cyclic_weights("baikal", tmp_path / "nope.png")
    assert not (tmp_path / "nope.png").exists()


# -- dynamics: attraction, spectra ----------------------------------------------------------


def test_dynamics_figures_write_pngs(tmp_path):
    summary = {
        "epoch": [0, 1, 2],
        "accuracy": [0.3, 0.8, 1.0],
        "pushed_away": [0.5, 0.2, 0.3],
        "pushed_away_correct": [float("nan"), 0.1, 0.3],
    }
    assert_png(plot_attraction({"Baikal": summary, "CE": summary}, tmp_path / "attraction.png"))
    history = {"steps": [0, 25, 50], "eigenvalues": [[3.0, 1.0], [2.5, 1.2], [4.0, 0.5]]}
    assert_png(
        plot_eigenvalue_trajectories({"cyclic": history}, tmp_path / "lambda.png", learning_rate=1)
    )
    with_ntk = {**history, "ntk_max": [10.0, 20.0, 15.0]}
    assert_png(plot_eigenvalue_trajectories({"a": with_ntk}, tmp_path / "both.png"))
    assert_png(plot_ntk_spectrum({"mlp": [5.0, 1.0, 1e-3, -1e-12]}, tmp_path / "ntk.png"))
    grid = np.linspace(-1, 5, 50)
    assert_png(plot_hessian_density(grid, {"a": np.exp(-(grid**2))}, tmp_path / "d.png"))
    with pytest.raises(ValueError, match="argument `histories`"):
        plot_eigenvalue_trajectories({"a": [1, 2]}, tmp_path / "bad.png")


def test_learned_loss_snapshots_pick_evenly_and_write_a_png(tmp_path):
    from metaloss.analysis.plots import plot_learned_loss_snapshots
    from metaloss.search import Snapshot

    snapshots = [Snapshot(step, 0, losses.LearnedLoss(seed=step).get_config()) for step in range(9)]
    assert_png(plot_learned_loss_snapshots(snapshots, tmp_path / "shapes.png", max_curves=3))
    with pytest.raises(ValueError, match="argument `snapshots`"):
        plot_learned_loss_snapshots([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="argument `max_curves`"):
        plot_learned_loss_snapshots(snapshots, tmp_path / "none.png", max_curves=0)
    assert not (tmp_path / "none.png").exists()


def test_robustness_curves_write_a_png_and_check_their_input(tmp_path):
    from metaloss.analysis.plots import plot_robustness_curves

    curves = {"CE": {0.0: 0.9, 0.1: 0.5, 0.2: 0.2}, "Baikal": {0.0: 0.9, 0.2: 0.3, 0.1: 0.6}}
    assert_png(plot_robustness_curves(curves, tmp_path / "robust.png", title="FGSM"))
    with pytest.raises(ValueError, match="argument `curves`"):
        plot_robustness_curves({}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_robustness_curves_draw_bands_and_check_them(tmp_path):
    from matplotlib.image import imread

    from metaloss.analysis.plots import plot_robustness_curves

    curves = {"CE": {0.0: 0.9, 0.1: 0.5, 0.2: 0.2}, "Baikal": {0.0: 0.9, 0.1: 0.6, 0.2: 0.3}}
    plain = plot_robustness_curves(curves, tmp_path / "plain.png")
    banded = plot_robustness_curves(
        curves, tmp_path / "banded.png", bands={"CE": {0.0: 0.05, 0.1: 0.1, 0.2: 0.05}}
    )
    assert_png(banded)
    # Same curves, same size: only the shaded band can tell the two images apart.
    assert imread(plain).shape == imread(banded).shape
    assert not np.array_equal(imread(plain), imread(banded))
    for bad in ({"SGD": {0.0: 0.1, 0.1: 0.1, 0.2: 0.1}}, {"CE": {0.0: 0.1, 0.1: 0.1}}):
        with pytest.raises(ValueError, match="argument `bands`"):
            plot_robustness_curves(curves, tmp_path / "bad.png", bands=bad)
    assert not (tmp_path / "bad.png").exists()


@pytest.fixture
def saved_axes(monkeypatch):
    """The first axes of every figure the training plots save (they close their figures)."""
    from metaloss.analysis.plots import _figure, training

    axes = []

    def save(fig, path):
        axes.append(fig.axes[0])
        return _figure.save(fig, path)

    monkeypatch.setattr(training, "_save", save)
    return axes


def test_seed_values_draw_every_seed_and_the_mean(tmp_path, saved_axes):
    from metaloss.analysis.plots import plot_seed_values

    assert_png(plot_seed_values({"ce": [0.5, 0.6, 0.7], "baikal": [0.65]}, tmp_path / "s.png"))
    (axis,) = saved_axes
    # One scatter per group (3 + 1 points) and one mean ± std marker per group.
    offsets = [c.get_offsets() for c in axis.collections if len(c.get_offsets())]
    assert sorted(len(o) for o in offsets)[-2:] == [1, 3]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["ce", "baikal"]


def test_comparison_takes_an_x_label(tmp_path, saved_axes):
    from metaloss.analysis.plots import plot_comparison

    plot_comparison({"a": {"best": [0.1, 0.3]}}, tmp_path / "c.png", "best", xlabel="generation")
    assert saved_axes[-1].get_xlabel() == "generation"
