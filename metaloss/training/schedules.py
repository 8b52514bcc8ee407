"""Optimizers and the piecewise learning-rate schedules of the TaylorGLO experiments."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from metaloss.losses._base import invalid_value

__all__ = ["PAPER_SCHEDULES", "PiecewiseSchedule", "learning_rate_schedule", "make_optimizer"]


@dataclass(frozen=True)
class PiecewiseSchedule:
    """Learning rate ``base`` multiplied by ``factor`` at each epoch in ``milestones``."""

    base: float
    factor: float
    milestones: tuple[int, ...]
    description: str

    def rate_at_epoch(self, epoch: int) -> float:
        """The learning rate during (0-based) ``epoch``."""
        return self.base * self.factor ** sum(epoch >= m for m in self.milestones)


# Full-training schedules of the TaylorGLO papers' CIFAR experiments (arXiv 2002.00059 §4,
# arXiv 2010.00788), each with SGD, momentum 0.9, batch 128.
PAPER_SCHEDULES: dict[str, PiecewiseSchedule] = {
    "constant": PiecewiseSchedule(0.1, 1.0, (), "0.1 throughout (override with --lr)"),
    "alexnet": PiecewiseSchedule(0.1, 0.1, (81, 122), "0.1, x0.1 at epochs 81 and 122 (164)"),
    "resnet": PiecewiseSchedule(0.1, 0.1, (100, 150), "0.1, x0.1 at epochs 100 and 150 (200)"),
    "wrn": PiecewiseSchedule(0.1, 0.2, (60, 120, 160), "0.1, x0.2 at epochs 60, 120, 160 (200)"),
    "allcnn_c": PiecewiseSchedule(
        0.01, 0.1, (200, 250, 300), "0.01, x0.1 at epochs 200, 250, 300 (350)"
    ),
}


def learning_rate_schedule(
    name: str, *, steps_per_epoch: int, base_learning_rate: float | None = None
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A Keras learning-rate schedule (per step) for a named paper schedule.

    Args:
        name: one of ``PAPER_SCHEDULES`` ("constant", "alexnet", "resnet", "wrn", "allcnn_c").
        steps_per_epoch: optimizer steps per epoch, to turn epoch milestones into steps.
        base_learning_rate: replaces the schedule's initial rate (the factors stay).
            Defaults to `None`.

    Returns:
        A float for "constant", else a ``PiecewiseConstantDecay``.

    Example:

    >>> schedule = learning_rate_schedule("resnet", steps_per_epoch=10)
    >>> [round(float(schedule(s)), 4) for s in (0, 999, 1000, 1500)]
    [0.1, 0.1, 0.01, 0.001]
    """
    if name not in PAPER_SCHEDULES:
        raise invalid_value("schedule", f"one of {sorted(PAPER_SCHEDULES)}", name)
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int):
        raise invalid_value("steps_per_epoch", "an integer >= 1", steps_per_epoch)
    if steps_per_epoch < 1:
        raise invalid_value("steps_per_epoch", "an integer >= 1", steps_per_epoch)
    schedule = PAPER_SCHEDULES[name]
    base = schedule.base if base_learning_rate is None else float(base_learning_rate)
    if not base > 0:
        raise invalid_value("base_learning_rate", "a positive number", base_learning_rate)
    if not schedule.milestones:
        return base
    # PiecewiseConstantDecay switches *after* a boundary step: epoch m starts at step m·E.
    boundaries = [m * steps_per_epoch - 1 for m in schedule.milestones]
    values = [base * schedule.factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(
    name: str = "sgd",
    learning_rate=0.1,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> keras.optimizers.Optimizer:
    """SGD (with momentum) or Adam, with optional weight decay.

    Keras applies ``weight_decay`` decoupled from the gradient (``w -= lr · wd · w`` each step),
    which for SGD differs from PyTorch's L2-in-the-gradient only through momentum.

    Args:
        name: "sgd" or "adam". Defaults to `"sgd"`.
        learning_rate: a float or a Keras schedule. Defaults to `0.1`.
        momentum: SGD momentum. Defaults to `0.9`.
        weight_decay: decoupled weight decay, 0 disables it. Defaults to `0.0`.
        nesterov: Nesterov momentum for SGD. Defaults to `False`.

    Returns:
        A Keras optimizer.
    """
    if isinstance(learning_rate, int | float) and not learning_rate > 0:
        raise invalid_value("learning_rate", "a positive number or a schedule", learning_rate)
    if not 0 <= momentum < 1:
        raise invalid_value("momentum", "a number in [0, 1)", momentum)
    if not weight_decay >= 0:
        raise invalid_value("weight_decay", "a number >= 0", weight_decay)
    decay = weight_decay or None
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=decay
        )
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decay)
    raise invalid_value("optimizer", "one of ['adam', 'sgd']", name)
