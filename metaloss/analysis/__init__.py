"""Analysis tools: why metalearned and dynamical losses regularise, and figures.

- :mod:`~metaloss.analysis.decomposition`: the learning-rule coefficients ``γ`` of any loss
  (:func:`gamma`, with closed forms), the TaylorGLO invariant and the null-epoch check.
- :mod:`~metaloss.analysis.attraction`: per-sample attraction toward zero training error, and
  :class:`AttractionTracker` for training runs.
- :mod:`~metaloss.analysis.hessian`: Hessian-vector products, top eigenvalues (Lanczos, power
  iteration), trace (Hutchinson) and spectral density (stochastic Lanczos quadrature);
  :class:`HessianTracker` records λ_max during training, :func:`peaks_per_period` finds the
  bursts of a cyclic loss.
- :mod:`~metaloss.analysis.ntk`: the empirical neural tangent kernel and its spectrum.
- :mod:`~metaloss.analysis.robustness`: accuracy under FGSM and PGD attacks (cleverhans).
- :mod:`~metaloss.analysis.statistics`: mean ± std over seeds, Welch's t-test, Markdown tables.
- :mod:`~metaloss.analysis.plots`: matplotlib figures.
"""

from metaloss.analysis import hessian, ntk, robustness, statistics
from metaloss.analysis.attraction import AttractionTracker, attraction, pushed_away
from metaloss.analysis.decomposition import (
    InvariantCheck,
    NullEpochCheck,
    TaylorGLOCoefficients,
    gamma,
    gamma_baikal,
    gamma_cross_entropy,
    gamma_mse,
    gamma_taylor_glo,
    invariant,
    taylor_glo_coefficients,
    taylorglo_invariant,
)
from metaloss.analysis.hessian_tracker import HessianTracker, peaks_per_period
from metaloss.analysis.plots import (
    loss_shape,
    plot_comparison,
    plot_history,
    plot_learned_loss_snapshots,
    plot_loss_shapes,
    plot_search_progress,
)

__all__ = [
    "AttractionTracker",
    "HessianTracker",
    "InvariantCheck",
    "NullEpochCheck",
    "TaylorGLOCoefficients",
    "attraction",
    "gamma",
    "gamma_baikal",
    "gamma_cross_entropy",
    "gamma_mse",
    "gamma_taylor_glo",
    "hessian",
    "invariant",
    "loss_shape",
    "ntk",
    "peaks_per_period",
    "plot_comparison",
    "plot_history",
    "plot_learned_loss_snapshots",
    "plot_loss_shapes",
    "plot_search_progress",
    "pushed_away",
    "robustness",
    "statistics",
    "taylor_glo_coefficients",
    "taylorglo_invariant",
]
