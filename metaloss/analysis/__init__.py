"""Analysis tools: figures now; decomposition, Hessian and NTK tools build on them."""

from metaloss.analysis.plots import (
    loss_shape,
    plot_comparison,
    plot_history,
    plot_loss_shapes,
    plot_search_progress,
)

__all__ = [
    "loss_shape",
    "plot_comparison",
    "plot_history",
    "plot_loss_shapes",
    "plot_search_progress",
]
