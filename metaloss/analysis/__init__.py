"""Analysis tools: figures now; decomposition, Hessian and NTK tools build on them."""

from metaloss.analysis.plots import plot_comparison, plot_history

__all__ = ["plot_comparison", "plot_history"]
