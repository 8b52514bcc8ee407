"""An experiment's report: comparison sections (table, Welch's p, figures) and result files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from metaloss._quiet import quiet_tensorflow
from metaloss.experiments.settings import jsonable
from metaloss.experiments.tables import format_table

__all__ = ["comparison_section", "mean_curve", "write_results"]


def mean_curve(histories: Sequence[Mapping], key: str) -> list[float]:
    """The mean over runs of each history's ``key`` curve, cut to the shortest."""
    curves = [h[key] for h in histories if h.get(key)]
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


def comparison_section(
    output: Path,
    *,
    title: str,
    arms: Mapping[str, Sequence],
    baseline: str,
    name: str,
    extra: Mapping | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """Compares the arms' test accuracy: prints a table, draws figures, returns a section.

    Args:
        output: the recipe's directory (the figures go there).
        title: the section's heading.
        arms: arm label -> list of :class:`~metaloss.training.ExperimentResult`, one per seed.
        baseline: the arm every other is tested against (Welch's t-test).
        name: stem of the figure files.
        extra: more JSON content (e.g. robustness curves). Defaults to `None`.
        notes: Markdown lines added under the table. Defaults to `()`.

    Returns:
        A section for :func:`write_results`: its JSON payload, with its Markdown under
        ``"markdown"``.
    """
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_comparison, plot_seed_values
    from metaloss.analysis.statistics import (
        COMPARISON_HEADERS,
        compare,
        comparison_rows,
        markdown_table,
    )

    accuracy = {label: [r.test_accuracy for r in runs] for label, runs in arms.items()}
    comparisons = compare(accuracy, baseline)
    rows = comparison_rows(comparisons)
    seeds_figure = plot_seed_values(accuracy, output / f"{name}_test_accuracy.png", title=title)
    curves = {
        label: {"val_accuracy": mean_curve([r.history for r in runs], "val_accuracy")}
        for label, runs in arms.items()
    }
    figures = [seeds_figure.name]
    if any(c["val_accuracy"] for c in curves.values()):  # runs without a validation split: none
        figures.append(
            plot_comparison(
                curves,
                output / f"{name}_validation_accuracy.png",
                title="validation accuracy, mean over seeds",
            ).name
        )
    markdown = "\n".join(
        [
            f"### {title}",
            "",
            f"Test accuracy over seeds; p from Welch's t-test against {baseline}.",
            "",
            markdown_table(COMPARISON_HEADERS, rows),
            *[f"{line}\n" for line in notes],
            *[f"![{figure.split('.')[0]}]({figure})" for figure in figures],
            "",
        ]
    )
    print(f"\n{title}\n" + format_table(COMPARISON_HEADERS, rows))
    return {
        "title": title,
        "metric": "test_accuracy",
        "baseline": baseline,
        "comparisons": [c.to_dict() for c in comparisons],
        "runs": {label: [r.to_dict() for r in runs] for label, runs in arms.items()},
        "figures": figures,
        "notes": list(notes),
        **jsonable(dict(extra or {})),
        "markdown": markdown,
    }


def write_results(
    output: Path, *, title: str, command: str, settings: Mapping, sections: Sequence[dict]
) -> Path:
    """Writes ``results.json`` and ``results.md`` (title, sections, the command) atomically.

    Returns:
        The path of ``results.json``.
    """
    from metaloss.training import write_study

    payload = {
        "title": title,
        "command": command,
        "settings": jsonable(dict(settings)),
        "sections": [{k: v for k, v in s.items() if k != "markdown"} for s in sections],
    }
    markdown = "\n".join(
        [f"# {title}", "", *[s["markdown"] for s in sections], "```bash", command, "```", ""]
    )
    path = write_study(output, payload, markdown)
    print(f"\nWrote {path}, {output / 'results.md'} and figures under {output}.")
    return path
