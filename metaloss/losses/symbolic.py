"""Symbolic losses: an expression of the label and the predicted probability, as EvoMAL searches."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_probabilities,
    float_predictions,
    invalid_value,
    one_hot_labels,
)
from metaloss.losses._expression import Node, evaluate, format_expression, parse_expression

__all__ = ["SymbolicLoss", "symbolic_loss"]

_OUTPUT_ACTIVATIONS = (None, "softplus")


def symbolic_loss(
    y_true,
    y_pred,
    expression: str | Node,
    *,
    weights: Sequence[float] | None = None,
    output_activation: str | None = None,
    from_logits: bool = False,
):
    """Computes a symbolic loss of each sample.

    Formula (C classes, ``y`` the one-hot label and ``f`` the predicted probability of class
    i, ``e`` the expression with its edge weights, σ the output activation):

    ```
    L(y, f) = Σ_i σ(e(y_i, f_i))
    ```

    summed over classes per sample (Keras's reduction then averages over the batch, EvoMAL's
    reduction). The primitives are EvoMAL's: ``add``, ``sub``, ``mul``, ``div`` (the analytic
    quotient ``a / √(1 + b²)``), ``min``, ``max``, ``sign``, ``square``, ``abs``, ``log`` and
    ``sqrt`` (protected: of ``max(|a|, 1e-7)``), ``tanh``, plus ``neg``.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        expression: the expression text (see :class:`SymbolicLoss`) or a parsed tree.
        weights: one weight per edge (per node but the root, in prefix order). Defaults to
            `None`: all ones.
        output_activation: `None` or `"softplus"`, applied per class. Defaults to `None`.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # cross-entropy: -log 0.8
    >>> round(float(symbolic_loss([0], [[0.8, 0.2]], "neg(mul(y, log(f)))")[0]), 4)
    0.2231

    References:
        Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
        Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
    """
    tree = expression if isinstance(expression, Node) else parse_expression(expression)
    y_pred, dtype = float_predictions(y_pred)
    y = one_hot_labels(y_true, y_pred)
    f = class_probabilities(y_pred, from_logits)
    values = evaluate(tree, y, f, weights)
    if output_activation == "softplus":
        values = ops.softplus(values)
    return ops.cast(ops.sum(values, axis=-1), dtype)


def _edge_weights(weights, edges: int) -> np.ndarray:
    if weights is None:
        return np.ones(edges)
    expected = f"{edges} finite numbers (one per edge of the expression tree)"
    try:
        array = np.asarray(weights, dtype="float64")
    except (TypeError, ValueError):
        raise invalid_value("weights", expected, weights) from None
    if array.shape != (edges,) or not np.isfinite(array).all():
        raise invalid_value("weights", expected, weights)
    return array


@keras.saving.register_keras_serializable(package="metaloss")
class SymbolicLoss(ClassificationLoss):
    """A loss written as an expression of ``y`` and ``f``: see :func:`symbolic_loss`.

    The expression is per class, in function-call syntax over the primitives ``add``, ``sub``,
    ``mul``, ``div``, ``min``, ``max``, ``sign``, ``square``, ``abs``, ``log``, ``sqrt``,
    ``tanh``, ``neg``, the terminals ``y`` (one-hot label) and ``f`` (predicted probability)
    and numeric literals. It is parsed by a grammar into ``keras.ops`` calls, never evaluated
    as Python: anything else (attribute access, other names, calls of other functions,
    lambdas) is a ``ValueError`` naming the offending token.

    Each edge of the tree (each node but the root, in prefix order) carries a weight that
    multiplies the node's value, EvoMAL's parameterised tree: ``loss.trainable_variables``
    holds them, so a local search can tune them by unrolled differentiation, and
    ``get_config`` keeps them (``.keras`` models and :func:`metaloss.losses.save` files reload
    with the tuned loss).

    Args:
        expression: e.g. ``"neg(mul(y, log(f)))"`` (cross-entropy).
        weights: the edge weights. Defaults to `None`: all ones (the plain expression).
        output_activation: `None` or `"softplus"` (per class, before the sum). Defaults to
            `None`.
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"symbolic"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> loss = SymbolicLoss("neg(mul(y, log(f)))")
    >>> round(float(loss([[1.0, 0.0]], [[0.8, 0.2]])), 4)
    0.2231
    >>> loss.edges  # neg -> mul -> (y, log -> f)
    4

    References:
        Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
        Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
    """

    def __init__(
        self,
        expression: str,
        weights: Sequence[float] | None = None,
        output_activation: str | None = None,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "symbolic",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        self.tree = parse_expression(expression)
        if output_activation not in _OUTPUT_ACTIVATIONS:
            raise invalid_value(
                "output_activation", f"one of {list(_OUTPUT_ACTIVATIONS)}", output_activation
            )
        self.output_activation = output_activation
        self.edges = self.tree.size() - 1
        self.edge_weights = keras.Variable(
            _edge_weights(weights, self.edges),
            dtype=self.dtype,
            trainable=True,
            name="symbolic_edge_weights",
        )
        self.trainable_variables = [self.edge_weights]

    @property
    def expression(self) -> str:
        """The canonical text of the expression."""
        return format_expression(self.tree)

    def call(self, y_true, y_pred):
        return symbolic_loss(
            y_true,
            y_pred,
            self.tree,
            weights=self.edge_weights,
            output_activation=self.output_activation,
            from_logits=self.from_logits,
        )

    def get_weights(self) -> list[float]:
        """The edge weights, in prefix order."""
        return [float(w) for w in ops.convert_to_numpy(self.edge_weights)]

    def set_weights(self, weights: Sequence[float]) -> None:
        """Assigns the edge weights (validated like the ``weights`` argument)."""
        self.edge_weights.assign(_edge_weights(weights, self.edges))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "expression": self.expression,
            "weights": self.get_weights(),
            "output_activation": self.output_activation,
        }
