"""Parsing of loss specifications written as ``"name:key=value,key=value"``."""

from __future__ import annotations

import json

from metaloss.losses._base import invalid_value

__all__ = ["parse_spec"]


def _split_top_level(text: str) -> list[str]:
    """Splits on commas that are not inside brackets, so ``theta=[1,2]`` stays whole."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text.replace("(", "[").replace(")", "]"))
    except json.JSONDecodeError:
        return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """Splits ``"name:key=value,..."`` into the name and a dict of parsed keyword arguments.

    Values are read as JSON (numbers, ``[lists]``), ``true``/``false``, ``none``, or else kept
    as strings.

    Example:

    >>> parse_spec("taylor_glo:theta=[0,0,0,-2,0,2,0,0],from_logits=true")
    ('taylor_glo', {'theta': [0, 0, 0, -2, 0, 2, 0, 0], 'from_logits': True})
    """
    name, _, arguments = spec.partition(":")
    kwargs = {}
    for item in _split_top_level(arguments):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise invalid_value("loss", "'name' or 'name:key=value,key=value'", spec)
        kwargs[key.strip()] = _parse_value(value.strip())
    return name.strip(), kwargs
