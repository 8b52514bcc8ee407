"""Matplotlib figures, written straight to PNG (the Agg backend: no display needed).

- :mod:`~metaloss.analysis.plots.training`: training curves, comparisons, search progress.
- :mod:`~metaloss.analysis.plots.losses`: loss shapes, learning rules (γ), cyclic weights,
  learned-loss snapshots.
- :mod:`~metaloss.analysis.plots.dynamics`: attraction, Hessian and NTK spectra.
- :mod:`~metaloss.analysis.plots.robustness`: accuracy against the adversarial ε.
"""

from metaloss.analysis.plots.dynamics import (
    plot_attraction,
    plot_attraction_by_confidence,
    plot_eigenvalue_trajectories,
    plot_hessian_density,
    plot_ntk_spectrum,
)
from metaloss.analysis.plots.losses import (
    learning_rule,
    loss_shape,
    plot_cyclic_weights,
    plot_gamma_curves,
    plot_learned_loss_snapshots,
    plot_loss_shapes,
)
from metaloss.analysis.plots.robustness import plot_robustness_curves
from metaloss.analysis.plots.training import (
    plot_comparison,
    plot_history,
    plot_search_progress,
    plot_seed_values,
)

__all__ = [
    "learning_rule",
    "loss_shape",
    "plot_attraction",
    "plot_attraction_by_confidence",
    "plot_comparison",
    "plot_cyclic_weights",
    "plot_eigenvalue_trajectories",
    "plot_gamma_curves",
    "plot_hessian_density",
    "plot_history",
    "plot_learned_loss_snapshots",
    "plot_loss_shapes",
    "plot_ntk_spectrum",
    "plot_robustness_curves",
    "plot_search_progress",
    "plot_seed_values",
]
