"""Search spaces of losses, as KerasTuner hypermodels whose ``build(hp)`` returns a Loss.

KerasTuner's tuner declares a hypermodel's hyperparameters by calling ``build(hp)`` before the
search; :class:`~metaloss.search.TaylorGLOSearch` then builds each trial's loss the same way.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import keras
import keras_tuner

from metaloss import losses
from metaloss.analysis.decomposition import taylorglo_invariant
from metaloss.losses._base import invalid_value
from metaloss.losses.taylor_glo import NUM_PARAMETERS

__all__ = [
    "DEFAULT_THETA_BOUND",
    "REFERENCE_SCALE",
    "LossSpace",
    "TaylorGLOInvariant",
    "TaylorGLOSpace",
    "theta_names",
]

#: θ_i ranges over [-bound, bound], a formality (``hp.Float`` needs limits): the reference search
#: has no bounds, and its shipped example has θ4 ≈ 47.2. At 10⁴ the range lies more than a
#: thousand initial step sizes (σ0 = 1.2 times :data:`REFERENCE_SCALE`) from zero, so
#: :class:`~metaloss.search.CMAESOracle` searches it without pycma bounds (see its docstring).
DEFAULT_THETA_BOUND = 1e4

#: The reference search's per-parameter step-size multipliers, in the paper's θ0..θ7.
#:
#: The TaylorGLO reference code (Lossferatu) runs CMA-ES with σ0 = 1.2 on a vector without the
#: Taylor factorials, whereas the paper's polynomial (the convention of
#: :class:`metaloss.losses.TaylorGLO`) writes ½θ3, ⅙θ4, ½θ6 and ½θ7. A step σ0 on the reference's
#: coefficient c_i is a step ``σ_i = σ0 · f_i`` on ``θ_i = f_i · c_i``, with the factorials
#: ``f = (1, 1, 1, 2, 6, 1, 2, 2)``: the reference's initial distribution is
#: ``θ_i ~ N(0, (1.2 · f_i)²)``. (Gonzalez & Miikkulainen, *Optimizing Loss Functions Through
#: Multivariate Taylor Polynomial Parameterization*, arXiv:2002.00059.)
REFERENCE_SCALE = (1.0, 1.0, 1.0, 2.0, 6.0, 1.0, 2.0, 2.0)


def theta_names() -> list[str]:
    """The hyperparameter names of TaylorGLO's parameters: ``theta_0`` .. ``theta_7``."""
    return [f"theta_{i}" for i in range(NUM_PARAMETERS)]


class TaylorGLOSpace(keras_tuner.HyperModel):
    """TaylorGLO's θ0..θ7 as ``hp.Float("theta_i", -bound, bound)``; ``build`` gives the loss.

    The space searches at the reference's scale: :attr:`sigma_scale` tells
    :class:`~metaloss.search.CMAESOracle` (through :class:`~metaloss.search.TaylorGLOSearch`)
    to take initial steps ``σ_i = sigma0 · scale_i`` on θ_i, so that ``sigma0`` keeps the
    reference's units (σ0 = 1.2 on its factorial-free vector: see :data:`REFERENCE_SCALE`).

    Args:
        bound: each θ_i lies in ``[-bound, bound]``. Defaults to `1e4`
            (:data:`DEFAULT_THETA_BOUND`: so far that CMA-ES runs without bounds, as the
            reference search does; a bound within 100 initial step sizes of zero is enforced
            with pycma's bounds instead).
        scale: the 8 per-parameter multipliers of ``sigma0``. Defaults to
            :data:`REFERENCE_SCALE`, ``(1, 1, 1, 2, 6, 1, 2, 2)``; ``(1,) * 8`` steps every θ_i
            by ``sigma0`` alike.
        from_logits: passed to the loss. Defaults to `True` (metaloss models output logits).

    Attributes:
        sigma_scale: ``{"theta_i": scale_i}``, read by :class:`~metaloss.search.TaylorGLOSearch`
            for the oracle's ``sigma_scale``.

    Example:

    >>> space = TaylorGLOSpace()
    >>> hp = keras_tuner.HyperParameters()
    >>> loss = space.build(hp)          # declares theta_0..theta_7, all 0 by default
    >>> loss.theta
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    """

    def __init__(
        self,
        bound: float = DEFAULT_THETA_BOUND,
        *,
        scale: Sequence[float] = REFERENCE_SCALE,
        from_logits: bool = True,
    ) -> None:
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not 0 < bound < math.inf
        ):
            raise invalid_value("bound", "a positive finite number", bound)
        try:
            scales = tuple(float(v) for v in scale)
        except (TypeError, ValueError):
            scales = ()
        if len(scales) != NUM_PARAMETERS or not all(0 < v < math.inf for v in scales):
            raise invalid_value("scale", f"{NUM_PARAMETERS} positive finite numbers", scale)
        super().__init__(name="taylor_glo")
        self.bound = float(bound)
        self.scale = scales
        self.sigma_scale = dict(zip(theta_names(), scales, strict=True))
        self.from_logits = from_logits

    def build(self, hp: keras_tuner.HyperParameters) -> keras.losses.Loss:
        theta = [hp.Float(name, -self.bound, self.bound, default=0.0) for name in theta_names()]
        return losses.TaylorGLO(theta, from_logits=self.from_logits)

    @staticmethod
    def theta(values: Mapping[str, float]) -> list[float]:
        """θ0..θ7 from a trial's ``{name: value}``."""
        return [float(values[name]) for name in theta_names()]


class LossSpace(keras_tuner.HyperModel):
    """Any registry loss with some numeric constructor arguments searched over ranges.

    Args:
        loss: a :func:`metaloss.losses.get` name, e.g. ``"cyclic_class_emphasis"``.
        ranges: ``{argument: (low, high)}``, each searched as ``hp.Float(argument, low, high)``.
        integers: arguments rounded to ``int`` before the loss is built. Defaults to `()`.
        **fixed: other constructor arguments, passed unchanged.

    Example:

    ```python
    space = LossSpace("cyclic_class_emphasis", {"period": (1, 40), "amplitude": (1, 100)},
                      integers=("period",), num_classes=10, from_logits=True)
    ```
    """

    def __init__(
        self,
        loss: str,
        ranges: Mapping[str, tuple[float, float]],
        *,
        integers: tuple[str, ...] = (),
        **fixed,
    ) -> None:
        if not ranges:
            raise ValueError(
                "Invalid value for argument `ranges`. Expected at least one "
                f"{{argument: (low, high)}} entry. Received: ranges={ranges!r}"
            )
        for name, bounds in ranges.items():
            if len(tuple(bounds)) != 2 or not float(bounds[0]) < float(bounds[1]):
                raise ValueError(
                    f"Invalid value for argument `ranges`. Expected (low, high) with low < high "
                    f"for {name!r}. Received: ranges={dict(ranges)!r}"
                )
        unknown = sorted(set(integers) - set(ranges))
        if unknown:
            raise ValueError(
                "Invalid value for argument `integers`. Expected names among the ranges "
                f"{sorted(ranges)}. Received: integers={tuple(integers)!r}"
            )
        super().__init__(name=loss)
        self.loss = loss
        self.ranges = {name: (float(lo), float(hi)) for name, (lo, hi) in ranges.items()}
        self.integers = tuple(integers)
        self.fixed = fixed
        example = losses.get(
            loss, **fixed, **{k: self._cast(k, lo) for k, (lo, _) in self.ranges.items()}
        )
        accepted = inspect.signature(type(example)).parameters
        searched = sorted(set(self.ranges) - set(accepted))
        if searched:
            raise ValueError(
                f"Invalid value for argument `ranges`. Expected constructor arguments of "
                f"{type(example).__name__} ({', '.join(accepted)}). Received: {searched}"
            )

    def _cast(self, name: str, value: float):
        return round(value) if name in self.integers else float(value)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.losses.Loss:
        values = {
            name: self._cast(name, hp.Float(name, low, high, default=(low + high) / 2))
            for name, (low, high) in self.ranges.items()
        }
        return losses.get(self.loss, **self.fixed, **values)


class TaylorGLOInvariant:
    """The search's pre-filter: keeps a θ candidate iff it satisfies the TaylorGLO invariant.

    See :func:`metaloss.analysis.decomposition.taylorglo_invariant`. Calling it answers keep or
    reject; :meth:`violation` says by how much a candidate breaks the invariant, which
    :class:`~metaloss.search.CMAESOracle` uses (``rejected="ranked"``) to rank rejected
    candidates.

    Args:
        num_classes: the task's number of classes.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def __call__(self, values: Mapping[str, float]) -> bool:
        return taylorglo_invariant(TaylorGLOSpace.theta(values), self.num_classes).holds

    def violation(self, values: Mapping[str, float]) -> float:
        """How far the candidate breaks the invariant: ``max(0, -margin)``.

        ``0`` when the invariant holds (``margin ≥ 0``: keep), else the positive shortfall
        ``-margin`` of the target's pull against the non-targets' push.
        """
        margin = taylorglo_invariant(TaylorGLOSpace.theta(values), self.num_classes).margin
        return max(0.0, -margin)
