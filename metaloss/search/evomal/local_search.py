"""EvoMAL's local search: a symbolic loss's edge weights tuned by unrolled differentiation.

Each meta step resets the base model's weights, takes one plain gradient step
``θ' = θ - α ∇_θ L_w(y, f_θ(x))`` with the candidate loss ``L_w`` (``w`` its edge weights),
measures cross-entropy at ``θ'`` on another batch and updates ``w`` by its gradient through
that step (Adam) — the offline phase of ML3, with the tree's weights as the meta-parameters
(it is :meth:`metaloss.search.AdaLFL.initialize`, run on a :class:`~metaloss.losses.SymbolicLoss`).

Settings from EvoMAL's public configuration (MNIST): 250 meta steps, meta learning rate 1e-3,
one inner step of SGD at the base learning rate 0.01.

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907; Bechtle et al., *Meta-Learning via
    Learned Loss*, arXiv 1906.05374.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from metaloss.losses import SymbolicLoss
from metaloss.losses._base import invalid_value
from metaloss.training.trainer import FitResult

__all__ = [
    "DEFAULT_LOCAL_SEARCH_LEARNING_RATE",
    "DEFAULT_LOCAL_SEARCH_STEPS",
    "LocalSearch",
    "tune_weights",
]

DEFAULT_LOCAL_SEARCH_STEPS = 250
DEFAULT_LOCAL_SEARCH_LEARNING_RATE = 1e-3
DEFAULT_LOCAL_SEARCH_INNER_LR = 0.01


@dataclass
class LocalSearch:
    """What :func:`tune_weights` did: the tuned loss and the meta steps' record."""

    loss: SymbolicLoss
    result: FitResult

    @property
    def improved(self) -> bool:
        """Whether the mean meta-objective of the last tenth of steps is below the first's."""
        history = self.result.history.get("meta_loss", [])
        if len(history) < 2:
            return False
        tenth = max(1, len(history) // 10)
        return sum(history[-tenth:]) / tenth < sum(history[:tenth]) / tenth


def tune_weights(
    loss: SymbolicLoss,
    model: keras.Model,
    train,
    *,
    steps: int = DEFAULT_LOCAL_SEARCH_STEPS,
    meta_data=None,
    learning_rate: float = DEFAULT_LOCAL_SEARCH_LEARNING_RATE,
    inner_lr: float = DEFAULT_LOCAL_SEARCH_INNER_LR,
    seed: int | None = None,
    verbose: str | int = 0,
) -> LocalSearch:
    """Tunes the edge weights of ``loss`` (a copy; ``loss`` itself is left as it is).

    Args:
        loss: the candidate, reading logits (``from_logits=True``).
        model: the base model; its current weights are the ones each step resets from (by a
            random permutation of each tensor, a fresh draw for i.i.d. initialisers).
        train: training batches (a dataset or an epoch source).
        steps: meta steps. Defaults to `250` (EvoMAL's).
        meta_data: batches for the meta-objective. Defaults to `None`: the next training batch.
        learning_rate: Adam's rate for the weights. Defaults to `1e-3` (EvoMAL's).
        inner_lr: α of the inner SGD step. Defaults to `0.01` (EvoMAL's base rate).
        seed: seeds the resets. Defaults to `None`.
        verbose: 0 or 1 (a progress bar). Defaults to `0`.

    Returns:
        A :class:`LocalSearch`; after a non-finite step the weights are the last finite ones
        (``result.status == "diverged"``).
    """
    from metaloss.search.online import AdaLFL

    if not isinstance(loss, SymbolicLoss):
        raise invalid_value("loss", "a metaloss.losses.SymbolicLoss", loss)
    tuned = SymbolicLoss.from_config(loss.get_config())
    weights = [v.numpy() for v in model.trainable_variables]
    trainer = AdaLFL(
        model,
        tuned,
        "sgd",
        meta_optimizer=keras.optimizers.Adam(learning_rate),
        inner_lr=inner_lr,
        seed=seed,
        from_logits=tuned.from_logits,
    )
    result = trainer.initialize(train, steps, meta_data=meta_data, verbose=verbose)
    for variable, value in zip(model.trainable_variables, weights, strict=True):
        variable.assign(value)  # the base model is left as it was given
    return LocalSearch(tuned, result)
