"""Reproduce the papers' claims at small scale on offline data and write RESULTS.md.

Each claim runs one paper recipe (``recipes/*.py``) with small settings on MNIST-1D, digits or the
spiral, with at least 5 seeds, then reads the recipe's ``results.json``: mean ± std per arm,
Welch's t-test against the baseline, the recipe's figure and the exact command. The verdict is
mechanical, never tuned toward the paper:

- "reproduces": the difference has the paper's sign and p < 0.05;
- "same direction, not significant": the sign is the paper's, p >= 0.05;
- "does not reproduce": the sign is the opposite.

Usage::

    python tools/reproduce.py                       # every claim (about two hours on 2 cores)
    python tools/reproduce.py --claims baikal_data,adalfl
    python tools/reproduce.py --quick --output /tmp/r --results /tmp/r/RESULTS.md   # smoke

Runs live under ``--output`` (default ``runs/reproduce``) and resume when rerun; figures are
copied beside ``--results`` (``docs/results/<claim>/``) so that RESULTS.md shows them.
"""

from __future__ import annotations

import importlib.util
import math
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05


def _recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Finding:
    """What one claim measured: arms' mean ± std, the test, the verdict, figures, details."""

    measured: str
    difference: float
    p_value: float
    expected_sign: int
    figures: list[str] = field(default_factory=list)
    details: str = ""

    @property
    def verdict(self) -> str:
        if not math.isfinite(self.difference) or self.difference * self.expected_sign <= 0:
            return "does not reproduce"
        if self.p_value < ALPHA:
            return "reproduces"
        return "same direction, not significant"


@dataclass
class Claim:
    key: str
    paper: str
    recipe: str
    args: list[str]
    quick_args: list[str]
    read: Callable[[dict, Path], Finding]


def _section(results: dict, title_part: str = "") -> dict:
    for section in results["sections"]:
        if title_part in section["title"]:
            return section
    raise KeyError(f"no section titled like {title_part!r} in {results['title']!r}")


def _group(section: dict, name: str) -> dict:
    return next(c for c in section["comparisons"] if c["group"] == name)


def _pair(section: dict, arm: str, baseline: str, *, sign: int = 1, unit="test accuracy"):
    a, b = _group(section, arm), _group(section, baseline)
    test = a.get("vs_baseline", {})
    return Finding(
        measured=(
            f"{unit}: {arm} {a['mean']:.4f} ± {a['std']:.4f} vs {baseline} "
            f"{b['mean']:.4f} ± {b['std']:.4f} (n = {a['n']}, {b['n']})"
        ),
        difference=test.get("difference", math.nan),
        p_value=test.get("p_value", math.nan),
        expected_sign=sign,
        figures=list(section.get("figures", [])),
    )


def _read_taylorglo(results, output):
    finding = _pair(_section(results), "taylor_glo", "cross_entropy")
    finding.details = " ".join(_section(results)["notes"])
    return finding


def _read_baikal(results, output):
    section = min(results["sections"], key=lambda s: float(s["title"].split("%")[0]))
    finding = _pair(section, "baikal", "cross_entropy")
    full = max(results["sections"], key=lambda s: float(s["title"].split("%")[0]))
    other = _pair(full, "baikal", "cross_entropy")
    finding.details = (
        f"At {section['title'].split(' of')[0]} of the data: {finding.measured}. "
        f"On {full['title'].split(' of')[0]} of it: {other.measured}, "
        f"p = {other.p_value:.3g}."
    )
    return finding


def _read_invariant(results, output):
    section = _section(results, "invariant")
    finding = _pair(
        section, "invariant_on", "invariant_off", unit="best validation accuracy of a search"
    )
    trained = {k: sum(v) / len(v) for k, v in section["candidates_trained"].items()}
    on, off = (
        next(c for c in section["equal_training"] if c["group"] == g)
        for g in ("invariant_on", "invariant_off")
    )
    finding.details = (
        f"Candidates trained per search: {trained['invariant_on']:.1f} with the invariant, "
        f"{trained['invariant_off']:.1f} without. At an equal number of trained candidates "
        f"(the search without the invariant cut off after as many trainings as its pair): "
        f"{on['mean']:.4f} ± {on['std']:.4f} with vs {off['mean']:.4f} ± {off['std']:.4f} "
        f"without, p = {on['vs_baseline']['p_value']:.3g}."
    )
    finding.measured += (
        f"; candidates trained {trained['invariant_on']:.1f} vs {trained['invariant_off']:.1f}"
    )
    return finding


def _read_attraction(results, output):
    from metaloss.analysis.statistics import summarize, welch_t_test

    section = _section(results, "Attraction")
    final = section["pushed_away_correct_final"]
    ce, taylor, baikal = final["cross_entropy"], final["taylor_glo"], final["baikal"]
    test = welch_t_test(taylor, ce)
    return Finding(
        measured=(
            "correct training samples pushed away at the last epoch: "
            f"TaylorGLO {summarize(taylor)}, Baikal {summarize(baikal)}, "
            f"cross-entropy {summarize(ce)}"
        ),
        difference=test.difference,
        p_value=test.p_value,
        expected_sign=1,
        figures=[f for f in section["figures"] if "attraction.png" in f],
        details=f"Baikal vs cross-entropy: p = {welch_t_test(baikal, ce).p_value:.3g}.",
    )


def _read_dynamical(results, output):
    widths = [sec for sec in results["sections"] if "tracked" in sec]
    narrow = min(widths, key=lambda sec: sec["width"])
    finding = _pair(narrow, "cyclic", "cross_entropy")
    finding.measured = f"width {narrow['width']}: " + finding.measured
    lines = []
    for sec in widths:
        for arm in ("cyclic", "cross_entropy"):
            for run in sec["tracked"].get(arm, []):
                periods = run["periods"]
                emphasised = [r for r in periods if r["emphasised_class"] is not None]
                rows = emphasised if arm == "cyclic" else periods
                late = sum(r["fraction"] >= 0.9 for r in rows)
                above = sum(r["above_edge"] for r in rows)
                lines.append(
                    f"width {sec['width']}, {arm} (seed {run['seed']}): λ_max peaked in the last "
                    f"10% of {late} of {len(rows)} periods and exceeded 2/η = "
                    f"{sec['two_over_lr']:g} in {above}; largest "
                    f"{max(r['lambda_max'] for r in rows):.3g}."
                )
        if sec is not narrow:
            other = _pair(sec, "cyclic", "cross_entropy")
            lines.append(f"Width {sec['width']}: {other.measured}, p = {other.p_value:.3g}.")
    finding.details = " ".join(lines)
    finding.figures = [f for f in narrow["figures"] if "eigenvalues" in f or "test_accuracy" in f]
    return finding


def _read_robustness(results, output):
    section = results["sections"][0]
    robustness = section["robustness"]
    eps = robustness["eps"]
    index = min(range(len(eps)), key=lambda i: abs(eps[i] - 0.1))
    curves = robustness["curves"]["fgsm"]
    taylor, ce, baikal = curves["taylor_glo"], curves["cross_entropy"], curves["baikal"]
    from metaloss.analysis.statistics import welch_t_test

    test = welch_t_test([v[index] for v in taylor["per_seed"]], [v[index] for v in ce["per_seed"]])
    return Finding(
        measured=(
            f"FGSM accuracy at ε = {eps[index]:g}: TaylorGLO {taylor['mean'][index]:.4f} ± "
            f"{taylor['std'][index]:.4f}, Baikal {baikal['mean'][index]:.4f} ± "
            f"{baikal['std'][index]:.4f}, cross-entropy {ce['mean'][index]:.4f} ± "
            f"{ce['std'][index]:.4f} (n = {taylor['n']})"
        ),
        difference=test.difference,
        p_value=test.p_value,
        expected_sign=1,
        figures=[robustness["figures"]["fgsm"]],
        details="FGSM accuracy per ε (mean over seeds): "
        + "; ".join(
            f"ε = {e:g}: TaylorGLO {taylor['mean'][i]:.3f}, Baikal {baikal['mean'][i]:.3f}, "
            f"CE {ce['mean'][i]:.3f}"
            for i, e in enumerate(eps)
        )
        + f". Baikal vs cross-entropy at ε = {eps[index]:g}: p = "
        f"{baikal['p_vs_baseline'][index]:.3g}.",
    )


def _read_adalfl(results, output):
    sections = results["sections"]
    finding = _pair(sections[0], "adalfl", "cross_entropy")
    finding.measured = f"{sections[0]['title']}: " + finding.measured
    lines = []
    for section in sections:
        pairs = [_pair(section, arm, "cross_entropy") for arm in ("ml3", "adalfl")]
        online = section.get("adalfl_vs_ml3", {})
        lines.append(
            f"{section['title']}: {pairs[0].measured.split(' vs ')[0]} (p = "
            f"{pairs[0].p_value:.3g} vs cross-entropy), {pairs[1].measured} (p = "
            f"{pairs[1].p_value:.3g}); AdaLFL − ML3 {online.get('difference', math.nan):+.4f}, "
            f"p = {online.get('p_value', math.nan):.3g}."
        )
    finding.details = " ".join(lines)
    finding.figures = [
        figure
        for section in sections
        for figure in (section["figures"][0], section["learned_loss_figure"])
    ]
    return finding


CLAIMS = [
    Claim(
        "taylorglo",
        "A TaylorGLO loss evolved for the task trains more accurate models than cross-entropy "
        "(TaylorGLO paper; here with a quarter of the data, its data-utilisation setting).",
        "taylorglo_cifar",
        [
            *("--dataset", "mnist1d", "--model", "mlp", "--subset-fraction", "0.25"),
            *("--generations", "15", "--population", "10", "--budget-epochs", "30"),
            *("--fitness-seeds", "3", "--reevaluate-top", "5", "--reevaluate-seeds", "3"),
            *("--parallel-candidates", "10", "--epochs", "30", "--seeds", "10"),
        ],
        ["--smoke", "--generations", "1"],
        _read_taylorglo,
    ),
    Claim(
        "baikal_data",
        "Baikal beats cross-entropy when training data is scarce (10% of it) "
        "(Baikal paper, data utilisation).",
        "baikal_mnist",
        [
            *("--dataset", "digits", "--model", "mlp", "--fractions", "1,0.1"),
            *("--steps", "1000", "--seeds", "10"),
        ],
        ["--smoke"],
        _read_baikal,
    ),
    Claim(
        "invariant",
        "Rejecting candidates that break the TaylorGLO invariant makes the search more "
        "efficient: at an equal budget it finds losses at least as good while training fewer "
        "candidates (regularization paper).",
        "taylorglo_cifar",
        [
            *("--experiment", "invariant", "--dataset", "mnist1d", "--model", "mlp"),
            *("--subset-fraction", "0.25", "--generations", "6", "--population", "8"),
            *("--budget-epochs", "10", "--search-seeds", "10", "--fitness-seeds", "3"),
            *("--parallel-candidates", "8"),
        ],
        ["--smoke", "--experiment", "invariant", "--generations", "1"],
        _read_invariant,
    ),
    Claim(
        "attraction",
        "Near zero training error, cross-entropy pulls every correctly classified sample toward "
        "a confident output, while TaylorGLO and Baikal push some away (regularization paper).",
        "taylorglo_cifar",
        [
            *("--experiment", "attraction", "--dataset", "mnist1d", "--model", "mlp"),
            *("--subset-fraction", "0.25", "--epochs", "100", "--seeds", "5"),
            *("--attraction-samples", "900"),
        ],
        ["--smoke", "--experiment", "attraction"],
        _read_attraction,
    ),
    Claim(
        "dynamical",
        "The cyclic dynamical loss trains an under-parameterised network to a better test "
        "accuracy than cross-entropy, and the Hessian's λ_max bursts past 2/η near the end of "
        "each period (dynamical-loss paper, spiral toy).",
        "dynamical",
        [
            *("--widths", "10,100", "--period", "500", "--amplitude", "70"),
            *("--steps", "4000", "--track-every", "50", "--seeds", "5"),
        ],
        ["--smoke"],
        _read_dynamical,
    ),
    Claim(
        "robustness",
        "Networks trained with TaylorGLO (and Baikal) are more robust to FGSM attacks than with "
        "cross-entropy (regularization paper).",
        "robustness",
        [
            *("--dataset", "digits", "--model", "mlp", "--epochs", "20", "--batch-size", "64"),
            *("--lr", "0.05", "--schedule", "constant", "--weight-decay", "0"),
            *("--attacks", "fgsm", "--seeds", "5"),
        ],
        ["--smoke", "--attacks", "fgsm"],
        _read_robustness,
    ),
    Claim(
        "adalfl",
        "A loss learned online by AdaLFL trains a more accurate model than cross-entropy, and "
        "than the same loss learned offline and frozen (ML3) (AdaLFL paper).",
        "adalfl",
        [
            *("--task", "mnist1d:mlp", "--task", "mnist1d:cnn1d", "--methods", "ce,ml3,adalfl"),
            *("--epochs", "30", "--init-steps", "2500", "--seeds", "10"),
        ],
        ["--smoke"],
        _read_adalfl,
    ),
]


def _loss_from_taylorglo_claim(output: Path) -> list[str]:
    """The attraction claim uses the loss the TaylorGLO claim evolved, when it exists."""
    best = output / "taylorglo" / "search" / "best_loss.json"
    return ["--loss", str(best)] if best.is_file() else []


def _copy_figures(finding: Finding, source: Path, target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in finding.figures:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
            copied.append(name)
    return copied


def _run_claim(claim: Claim, output: Path, quick: bool, verbose: int) -> tuple[dict, str]:
    import json

    args = list(claim.quick_args if quick else claim.args)
    if claim.key == "attraction" and not quick:
        args += _loss_from_taylorglo_claim(output)
    args += ["--output", str(output / claim.key)]
    args += ["--verbose", str(verbose)] if verbose else []
    _recipe(claim.recipe).main.main(args, standalone_mode=False)
    results = json.loads((output / claim.key / "results.json").read_text())
    return results, _training_time(results, output / claim.key)


def _training_time(results: dict, directory: Path) -> str:
    """The wall time its training runs and search candidates took when they ran (resumed runs
    keep the time they took then)."""
    from metaloss.search.results import read_search

    seconds = sum(
        run.get("seconds") or 0.0
        for section in results["sections"]
        for runs in section.get("runs", {}).values()
        for run in runs
    )
    for search in directory.glob("**/search.json"):
        seconds += sum(t.seconds or 0.0 for t in read_search(search.parent).trials)
    return f"{seconds / 60:.1f} min of training"


def _sections_by_claim(lines: list[str]) -> dict[str, list[str]]:
    """``### <claim>`` sections of RESULTS.md lines, by claim key."""
    sections: dict[str, list[str]] = {}
    key = None
    for line in lines:
        if line.startswith("### "):
            key = line[4:].strip()
            sections[key] = []
        if key is not None:
            sections[key].append(line)
    return sections


def _earlier_claims(results_path: Path, known: dict, chosen: set[str], quick: bool):
    """The table rows and sections of the claims not rerun, from an existing RESULTS.md (a
    rerun of some claims keeps the others' results)."""
    if quick or not results_path.is_file():
        return {}, {}
    lines = results_path.read_text().splitlines()
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1] in known and cells[1] not in chosen:
            rows[cells[1]] = line
    start = lines.index("## Claims") + 2 if "## Claims" in lines else len(lines)
    sections = {
        k: v for k, v in _sections_by_claim(lines[start:]).items() if k in rows and k in known
    }
    return {k: v for k, v in rows.items() if k in sections}, sections


@click.command()
@click.option(
    "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/reproduce")
)
@click.option(
    "--results",
    "results_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "RESULTS.md",
    show_default=True,
)
@click.option("--claims", default=None, help="Comma-separated claim keys (default: all).")
@click.option("--quick", is_flag=True, help="Smoke sizes (2 seeds): checks the machinery only.")
@click.option("--verbose", type=click.IntRange(0, 2), default=0)
def main(output, results_path, claims, quick, verbose):
    """Runs the small-scale version of each claim and writes RESULTS.md."""
    from metaloss._quiet import quiet_tensorflow

    quiet_tensorflow()
    known = {c.key: c for c in CLAIMS}
    chosen = list(known) if claims is None else [k.strip() for k in claims.split(",")]
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown claims {unknown}; known: {list(known)}", param_hint="'--claims'"
        )
    figures_root = results_path.parent / "docs" / "results"
    rows, sections = [], []
    for key in chosen:
        claim = known[key]
        click.echo(f"\n=== {key}: {claim.paper}")
        results, took = _run_claim(claim, output, quick, verbose)
        finding = claim.read(results, output / key)
        figures = _copy_figures(finding, output / key, figures_root / key)
        rel = figures_root.relative_to(results_path.parent) / key
        rows.append((key, finding, took))
        sections += [
            f"### {key}",
            "",
            f"**Paper:** {claim.paper}",
            "",
            f"**Measured:** {finding.measured}; Welch's t-test p = {finding.p_value:.3g}. "
            f"**Verdict: {finding.verdict}.**",
            "",
            *([finding.details, ""] if finding.details else []),
            *[f"![{key}]({rel / name})" for name in figures],
            "",
            "```bash",
            results["command"],
            "```",
            f"({took}; `python tools/reproduce.py --claims {key}` reruns it.)",
            "",
        ]
        click.echo(f"--> {finding.measured}; p = {finding.p_value:.3g}: {finding.verdict}")
    fresh_rows = {k: f"| {k} | {f.measured} | {f.p_value:.3g} | {f.verdict} |" for k, f, _ in rows}
    fresh_sections = _sections_by_claim(sections)
    kept_rows, kept_sections = _earlier_claims(results_path, known, set(chosen), quick)
    order = [k for k in known if k in fresh_rows or k in kept_rows]
    table = [
        "| claim | measured | p (Welch) | verdict |",
        "|---|---|---|---|",
        *[fresh_rows.get(k) or kept_rows[k] for k in order],
    ]
    sections = [line for k in order for line in (fresh_sections.get(k) or kept_sections[k])]
    text = "\n".join(
        [
            "# Reproducing the papers' claims at small scale",
            "",
            "Written by `python tools/reproduce.py"
            + (" --quick" if quick else "")
            + (f" --claims {','.join(chosen)}" if claims is not None else "")
            + f"` on {date.today().isoformat()} ({platform.machine()}, "
            f"Python {sys.version.split()[0]})"
            + (
                ", the other claims kept from the earlier run"
                if claims is not None and len(order) > len(chosen)
                else ""
            )
            + ". Each claim runs a paper recipe on offline data "
            "with several seeds; the verdict is mechanical: *reproduces* when the difference has "
            f"the paper's sign and Welch's two-sided p < {ALPHA}, *same direction, not "
            "significant* when p is larger, *does not reproduce* when the sign is opposite. "
            "Nothing was tuned toward the papers' results.",
            "",
            *table,
            "",
            "## Claims",
            "",
            *sections,
        ]
    )
    results_path.parent.mkdir(parents=True, exist_ok=True)
    partial = results_path.with_name(results_path.name + ".partial")
    partial.write_text(text + "\n")
    partial.replace(results_path)
    click.echo(f"\nWrote {results_path}")


if __name__ == "__main__":
    main()
