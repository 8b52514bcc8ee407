"""Shared figure plumbing: the Agg backend (no display needed) and atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path) -> Path:
    """Writes ``fig`` to the PNG ``path`` atomically (a partial file, then a rename), closes it."""
    import matplotlib.pyplot as plt

    try:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One temporary name per writer (processes may write the same figure at once).
        partial = path.with_name(f"partial.{os.getpid()}.{path.name}")
        fig.savefig(partial, dpi=120, bbox_inches="tight")
        partial.replace(path)
        return path
    finally:
        plt.close(fig)
