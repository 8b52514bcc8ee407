"""Loss expressions in function-call syntax, parsed by a grammar (never evaluated as Python).

Grammar (whitespace between tokens is ignored)::

    expression := NUMBER | "y" | "f" | PRIMITIVE "(" expression ("," expression)* ")"

``PRIMITIVE`` is one of :data:`PRIMITIVES` with exactly its arity; ``NUMBER`` a finite decimal
literal (optionally signed, with an exponent). Every other token, a name outside the set, a call
of a terminal, a wrong number of arguments or trailing text is a ``ValueError`` that names the
offending token and its position. The tree is turned into ``keras.ops`` calls by
:func:`evaluate`; nothing in the text is ever executed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from keras import ops

__all__ = ["PRIMITIVES", "TERMINALS", "Node", "evaluate", "format_expression", "parse_expression"]

#: The primitive set and each primitive's arity: EvoMAL's (arXiv 2209.08907) plus ``neg``.
PRIMITIVES = {
    "add": 2,
    "sub": 2,
    "mul": 2,
    "div": 2,
    "min": 2,
    "max": 2,
    "sign": 1,
    "square": 1,
    "abs": 1,
    "log": 1,
    "sqrt": 1,
    "tanh": 1,
    "neg": 1,
}
#: ``y``: the one-hot label of a class; ``f``: the predicted probability of that class.
TERMINALS = ("y", "f")
#: EvoMAL's protection of ``log`` and ``sqrt``: their argument is ``max(|a|, PROTECTION)``.
PROTECTION = 1e-7
MAX_LENGTH = 10_000
MAX_DEPTH = 64

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<punct>[(),]))"
)


@dataclass(frozen=True)
class Node:
    """One node of an expression tree: a primitive with children, a terminal or a constant."""

    name: str  # a primitive, "y", "f", or "const"
    children: tuple[Node, ...] = ()
    value: float | None = None

    def size(self) -> int:
        """The number of nodes of the tree under (and including) this one."""
        return 1 + sum(child.size() for child in self.children)

    def depth(self) -> int:
        """The length of the longest path from this node to a leaf, counted in nodes."""
        return 1 + max((child.depth() for child in self.children), default=0)


def _token_at(text: str, position: int) -> str:
    """The token that starts at ``position`` (a single character if none does)."""
    if not text[position:].strip():
        return "end of text"
    match = _TOKEN.match(text, position)
    return match.group(match.lastgroup)[:20] if match else text[position:].lstrip()[0]


def _error(text: str, position: int, what: str) -> ValueError:
    token = _token_at(text, position)
    return ValueError(
        f"Invalid value for argument `expression`. Expected a loss expression of "
        f"{sorted(PRIMITIVES)}, 'y', 'f' and numbers in function-call syntax; {what} at "
        f"position {position}: {token!r}. Received: expression={text[:200]!r}"
    )


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:  # the parser reports it if it gets this far
            start = len(text) - len(text[position:].lstrip())
            tokens.append(("invalid", text[start], start))
            break
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


def parse_expression(text: str) -> Node:
    """Parses a loss expression into a :class:`Node` tree.

    Example:

    >>> format_expression(parse_expression("neg( mul(y, log(f)) )"))
    'neg(mul(y, log(f)))'
    """
    if not isinstance(text, str):
        raise ValueError(
            "Invalid value for argument `expression`. Expected a string such as "
            f"'neg(mul(y, log(f)))'. Received: expression={text!r}"
        )
    if len(text) > MAX_LENGTH:
        raise _error(text, MAX_LENGTH, f"the text is longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else ("end", "", len(text))

    def take(kind, value=None, what=""):
        nonlocal position
        token = peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise _error(text, token[2], what or f"expected {value or kind}")
        position += 1
        return token

    def expression(depth):
        nonlocal position
        kind, value, start = peek()
        if depth > MAX_DEPTH:
            raise _error(text, start, f"the expression is deeper than {MAX_DEPTH} levels")
        if kind == "number":
            position += 1
            number = float(value)
            if not math.isfinite(number):
                raise _error(text, start, "a number that is not finite")
            return Node("const", value=number)
        if kind == "invalid":
            raise _error(text, start, f"unexpected character {value!r}")
        if kind != "name":
            raise _error(text, start, "expected a primitive, 'y', 'f' or a number")
        position += 1
        if value in TERMINALS:
            if peek()[1] == "(":
                raise _error(text, start, f"the terminal {value!r} cannot be called")
            return Node(value)
        if value not in PRIMITIVES:
            raise _error(text, start, f"{value!r} is not a primitive or terminal")
        take("punct", "(", f"expected '(' after {value!r}")
        children = [expression(depth + 1)]
        while peek()[1] == ",":
            position += 1
            children.append(expression(depth + 1))
        take("punct", ")", "expected ',' or ')'")
        if len(children) != PRIMITIVES[value]:
            raise _error(
                text,
                start,
                f"{value!r} takes {PRIMITIVES[value]} argument(s), got {len(children)}",
            )
        return Node(value, tuple(children))

    tree = expression(1)
    if position != len(tokens):
        raise _error(text, tokens[position][2], "unexpected text after the expression")
    return tree


def format_expression(node: Node) -> str:
    """The canonical text of a tree: ``name(a, b)``, numbers in Python's shortest form."""
    if node.name == "const":
        return repr(float(node.value))
    if not node.children:
        return node.name
    return f"{node.name}({', '.join(format_expression(c) for c in node.children)})"


def _protected(a):
    return ops.maximum(ops.abs(a), PROTECTION)


_OPERATIONS = {
    "add": ops.add,
    "sub": ops.subtract,
    "mul": ops.multiply,
    "div": lambda a, b: a / ops.sqrt(1.0 + ops.square(b)),  # the analytic quotient
    "min": ops.minimum,
    "max": ops.maximum,
    "sign": ops.sign,
    "square": ops.square,
    "abs": ops.abs,
    "log": lambda a: ops.log(_protected(a)),
    "sqrt": lambda a: ops.sqrt(_protected(a)),
    "tanh": ops.tanh,
    "neg": ops.negative,
}


def evaluate(tree: Node, y, f, edge_weights: Sequence | None = None):
    """The tree's value elementwise on ``y`` and ``f`` (tensors of one shape), with ``keras.ops``.

    Every node but the root feeds its parent through an edge whose weight multiplies it:
    ``edge_weights[i - 1]`` for the node at prefix position ``i`` (EvoMAL's parameterised
    tree; all ones, or `None`, is the plain expression).
    """
    position = 0

    def visit(node):
        nonlocal position
        index = position
        position += 1
        if node.name == "y":
            value = y
        elif node.name == "f":
            value = f
        elif node.name == "const":
            value = ops.cast(node.value, f.dtype)
        else:
            value = _OPERATIONS[node.name](*(visit(child) for child in node.children))
        if index and edge_weights is not None:
            value = value * ops.cast(edge_weights[index - 1], f.dtype)
        return value

    return ops.broadcast_to(visit(tree), ops.shape(f))
