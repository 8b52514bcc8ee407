"""Search spaces of losses, as KerasTuner hypermodels whose ``build(hp)`` returns a Loss.

KerasTuner's tuner declares a hypermodel's hyperparameters by calling ``build(hp)`` before the
search; :class:`~metaloss.search.TaylorGLOSearch` then builds each trial's loss the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import keras
import keras_tuner

from metaloss import losses
from metaloss.analysis.decomposition import taylorglo_invariant
from metaloss.losses.taylor_glo import NUM_PARAMETERS

__all__ = [
    "DEFAULT_THETA_BOUND",
    "LossSpace",
    "TaylorGLOInvariant",
    "TaylorGLOSpace",
    "theta_names",
]

#: θ_i ranges over [-bound, bound]: far outside what CMA-ES with σ0 = 1.2 visits from zero.
DEFAULT_THETA_BOUND = 10.0


def theta_names() -> list[str]:
    """The hyperparameter names of TaylorGLO's parameters: ``theta_0`` .. ``theta_7``."""
    return [f"theta_{i}" for i in range(NUM_PARAMETERS)]


class TaylorGLOSpace(keras_tuner.HyperModel):
    """TaylorGLO's θ0..θ7 as ``hp.Float("theta_i", -bound, bound)``; ``build`` gives the loss.

    Args:
        bound: each θ_i lies in ``[-bound, bound]``. Defaults to `10.0`.
        from_logits: passed to the loss. Defaults to `True` (metaloss models output logits).

    Example:

    >>> space = TaylorGLOSpace()
    >>> hp = keras_tuner.HyperParameters()
    >>> loss = space.build(hp)          # declares theta_0..theta_7, all 0 by default
    >>> loss.theta
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    """

    def __init__(self, bound: float = DEFAULT_THETA_BOUND, *, from_logits: bool = True) -> None:
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not bound > 0:
            raise ValueError(
                "Invalid value for argument `bound`. Expected a positive number. "
                f"Received: bound={bound!r}"
            )
        super().__init__(name="taylor_glo")
        self.bound = float(bound)
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

    See :func:`metaloss.analysis.decomposition.taylorglo_invariant`.

    Args:
        num_classes: the task's number of classes.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def __call__(self, values: Mapping[str, float]) -> bool:
        return taylorglo_invariant(TaylorGLOSpace.theta(values), self.num_classes).holds
