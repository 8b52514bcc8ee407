"""Reproduce the papers' claims at small scale on offline data and write RESULTS.md.

Each claim runs one paper recipe (``recipes/*.py``) with small settings on MNIST-1D, digits or the
spiral, with at least 5 seeds, then reads the recipe's ``results.json``: mean ± std per arm,
Welch's t-test against the baseline, the recipe's figure and the exact command. The verdict is
mechanical, never tuned toward the paper:

- "reproduces": the difference has the paper's sign and p < 0.05;
- "same direction, not significant": the sign is the paper's, p >= 0.05;
- "does not reproduce": the sign is the opposite.

Usage::

    python tools/reproduce.py                       # every claim (about 6 hours on 2 cores,
                                                    # 3.5 of them the spiral at paper settings)
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
    """What one claim measured: arms' mean ± std, the test, the verdict, figures, details.

    ``detectable`` is the smallest difference the comparison's seeds and spreads would detect
    with 80% power at α = 0.05 (:func:`metaloss.analysis.statistics.detectable_difference`).
    """

    measured: str
    difference: float
    p_value: float
    expected_sign: int
    figures: list[str] = field(default_factory=list)
    details: str = ""
    detectable: float = math.nan
    seeds: tuple[int, int] = (0, 0)

    @property
    def verdict(self) -> str:
        if not math.isfinite(self.difference) or self.difference * self.expected_sign <= 0:
            return "does not reproduce"
        if self.p_value < ALPHA:
            return "reproduces"
        return "same direction, not significant"


@dataclass
class Claim:
    """A paper's claim, the recipe run that checks it, and how its setting differs from the
    paper's (``setting``: the paper's, ours, and why)."""

    key: str
    paper: str
    recipe: str
    args: list[str]
    quick_args: list[str]
    read: Callable[[dict, Path], Finding]
    setting: str = ""


def _detectable(std_a: float, n_a: int, std_b: float, n_b: int) -> float:
    from metaloss.analysis.statistics import detectable_difference

    if min(n_a, n_b) < 2:
        return math.nan
    return detectable_difference(std_a, n_a, std_b, n_b)


def _detectable_of(a: list[float], b: list[float]) -> tuple[float, tuple[int, int]]:
    from metaloss.analysis.statistics import summarize

    sa, sb = summarize(a), summarize(b)
    return _detectable(sa.std, sa.n, sb.std, sb.n), (sa.n, sb.n)


def power_note(finding: Finding) -> str:
    """The smallest difference the claim's seeds could detect, and the measured one."""
    if not math.isfinite(finding.detectable):
        return ""
    n_a, n_b = finding.seeds
    measured = (
        f" The measured difference is {finding.difference:+.4f}."
        if math.isfinite(finding.difference)
        else ""
    )
    return (
        f"**Power:** with {n_a} and {n_b} seeds at these spreads, a difference smaller than "
        f"{finding.detectable:.4f} would usually go unnoticed (80% power at α = {ALPHA})."
        + measured
    )


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
        detectable=_detectable(a["std"], a["n"], b["std"], b["n"]),
        seeds=(a["n"], b["n"]),
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
    detectable, seeds = _detectable_of(taylor, ce)
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
        detectable=detectable,
        seeds=seeds,
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


def _fgsm_at(curves: dict, index: int, label: str) -> list[float]:
    return [curve[index] for curve in curves[label]["per_seed"]]


def _read_robustness(results, output):
    """The verdict follows the paper's attack (each model's own loss's gradient); the
    loss-agnostic attack (cross-entropy's gradient, the same attacker for every model) is
    reported next to it."""
    from metaloss.analysis.statistics import welch_t_test

    section = results["sections"][0]
    robustness = section["robustness"]
    eps = robustness["eps"]
    index = min(range(len(eps)), key=lambda i: abs(eps[i] - 0.1))
    by_gradient = {g: robustness["curves"][g]["fgsm"] for g in robustness["gradient_losses"]}
    own = by_gradient["own"]
    taylor, ce, baikal = own["taylor_glo"], own["cross_entropy"], own["baikal"]
    test = welch_t_test(_fgsm_at(own, index, "taylor_glo"), _fgsm_at(own, index, "cross_entropy"))
    detectable, seeds = _detectable_of(
        _fgsm_at(own, index, "taylor_glo"), _fgsm_at(own, index, "cross_entropy")
    )
    lines = []
    for gradient, curves in by_gradient.items():
        name = "its own loss" if gradient == "own" else "cross-entropy"
        pairs = []
        for arm in ("taylor_glo", "baikal"):
            pair = welch_t_test(
                _fgsm_at(curves, index, arm), _fgsm_at(curves, index, "cross_entropy")
            )
            pairs.append(f"{arm} − CE {pair.difference:+.4f} (p = {pair.p_value:.3g})")
        lines.append(
            f"FGSM along the gradient of {name}, accuracy per ε (mean over seeds): "
            + "; ".join(
                f"ε = {e:g}: TaylorGLO {curves['taylor_glo']['mean'][i]:.3f}, Baikal "
                f"{curves['baikal']['mean'][i]:.3f}, CE {curves['cross_entropy']['mean'][i]:.3f}"
                for i, e in enumerate(eps)
            )
            + f". At ε = {eps[index]:g}: "
            + ", ".join(pairs)
            + "."
        )
    agnostic = by_gradient.get("cross_entropy")
    measured_agnostic = ""
    if agnostic is not None:
        pair = welch_t_test(
            _fgsm_at(agnostic, index, "taylor_glo"), _fgsm_at(agnostic, index, "cross_entropy")
        )
        measured_agnostic = (
            f"; along cross-entropy's gradient (loss-agnostic) TaylorGLO − CE "
            f"{pair.difference:+.4f}, p = {pair.p_value:.3g}"
        )
    return Finding(
        measured=(
            f"FGSM accuracy at ε = {eps[index]:g}, gradient of each model's own loss: TaylorGLO "
            f"{taylor['mean'][index]:.4f} ± {taylor['std'][index]:.4f}, Baikal "
            f"{baikal['mean'][index]:.4f} ± {baikal['std'][index]:.4f}, cross-entropy "
            f"{ce['mean'][index]:.4f} ± {ce['std'][index]:.4f} (n = {taylor['n']})"
            + measured_agnostic
        ),
        difference=test.difference,
        p_value=test.p_value,
        expected_sign=1,
        figures=[robustness["figures"][g]["fgsm"] for g in by_gradient],
        details=" ".join(lines),
        detectable=detectable,
        seeds=seeds,
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
        "Paper: CIFAR-10 networks (and MNIST), CMA-ES with a population of 20-40 for up to 100 "
        "generations, each candidate trained once for about 10% of the full budget, the best "
        "loss then trained in full. Ours: an MLP on MNIST-1D with 25% of its training data "
        "(900 examples), 15 generations of 10, 30-epoch partial training, each candidate scored "
        "on 3 seeds, the 5 best retrained on 3 fresh seeds, the crowned loss and cross-entropy "
        "compared on 10 seeds the search never used. Why: a CIFAR-scale search needs GPUs for "
        "days; several fitness seeds because one partial run's noise (about 0.03) exceeds the "
        "gains being ranked",
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
        "Paper (GLO): MNIST with 10% of its training data, a small CNN, SGD at 0.01 with "
        "momentum 0.9, batch 100, 20 000 steps. Ours: scikit-learn's digits (10%: 129 "
        "training images), an MLP, the same optimiser and batch, 1 000 steps (about 800 "
        "epochs of the 10% subset), 10 seeds per arm. Why: MNIST needs a download; 20 000 "
        "steps would cost 20 times the CPU time on a subset that 1 000 steps already fit",
    ),
    Claim(
        "baikal_data_mnist1d",
        "Baikal beats cross-entropy when training data is scarce (10% of it) "
        "(Baikal paper, data utilisation), on a second offline dataset.",
        "baikal_mnist",
        [
            *("--dataset", "mnist1d", "--model", "mlp", "--fractions", "1,0.1"),
            *("--steps", "1000", "--seeds", "10"),
        ],
        ["--smoke", "--dataset", "mnist1d"],
        _read_baikal,
        "Paper (GLO): MNIST with 10% of its training data, a small CNN, SGD at 0.01 with "
        "momentum 0.9, batch 100, 20 000 steps. Ours: MNIST-1D (10%: 360 training "
        "sequences), its MLP, the same optimiser and batch, 1 000 steps (about 280 epochs of "
        "the 10% subset), 10 seeds per arm. Why: MNIST needs a download; 20 000 steps would "
        "cost 20 times the CPU time",
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
        "Paper: the TaylorGLO searches with the invariant check and without it "
        "(ignoreInvariantCheck), on CIFAR-10. Ours: MNIST-1D with 25% of the data, an MLP, "
        "10 search seeds per arm, 6 generations of 8, 10-epoch partial training, 3 fitness "
        "seeds; also compared at an equal number of trained candidates. Why: CPU time",
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
        "Paper: CIFAR-10 networks trained to zero training error with cross-entropy, Baikal "
        "and TaylorGLO. Ours: an MLP on 25% of MNIST-1D, 100 epochs (zero training error), "
        "5 seeds, 900 training samples measured, the TaylorGLO loss of the taylorglo claim's "
        "search. Why: CPU time",
    ),
    Claim(
        "dynamical",
        "The cyclic dynamical loss trains an under-parameterised network to a better test "
        "accuracy than cross-entropy, and the Hessian's λ_max bursts past 2/η near the end of "
        "each period (dynamical-loss paper, spiral toy).",
        "dynamical",
        [
            *("--widths", "10,100", "--period", "5000", "--amplitude", "70"),
            *("--steps", "70000", "--track-every", "25", "--seeds", "5"),
        ],
        ["--smoke"],
        _read_dynamical,
        "Paper (Fig. 4, the authors' notebook): the 3-class spiral, 300 points, "
        "Dense(100)-ReLU-Dense(3), full-batch gradient descent at η = 1 in float64, T = 5000, "
        "A = 70, 70 000 steps with the last period plain, Hessian top-3 by Lanczos every 25 "
        "steps and the NTK on 50 points. Ours: exactly that, for width 100 and for width 10 "
        "(under-parameterised, our choice), 5 seeds per arm, the Hessian and NTK tracked on "
        "seed 0 of each arm. Differences: Keras's Glorot-uniform initialisation (the notebook "
        "uses JAX stax) and inputs standardised by a fixed layer",
    ),
    Claim(
        "robustness",
        "Networks trained with TaylorGLO (and Baikal) are more robust to FGSM attacks than with "
        "cross-entropy (regularization paper).",
        "robustness",
        [
            *("--dataset", "digits", "--model", "mlp", "--epochs", "20", "--batch-size", "64"),
            *("--lr", "0.05", "--schedule", "constant", "--weight-decay", "0"),
            *("--attacks", "fgsm", "--gradient-loss", "own", "--gradient-loss", "cross_entropy"),
            *("--seeds", "5"),
        ],
        ["--smoke", "--attacks", "fgsm"],
        _read_robustness,
        "Paper: CIFAR-10 networks trained with each loss, FGSM at ε = 0.1 (and a sweep) in "
        "pixel space along the gradient of each model's own loss. Ours: an MLP on "
        "scikit-learn's digits, 20 epochs of SGD at 0.05, 5 seeds, the whole test set "
        "attacked along each model's own loss's gradient (the paper's choice, the verdict) "
        "and along cross-entropy's (the same attacker for every model, which a loss cannot "
        "game), the TaylorGLO loss shipped with the reference code. Why: CPU time",
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
        "Paper: MNIST, CIFAR-10, CIFAR-100 and SVHN networks, 2 500 offline steps, CE vs "
        "ML3 vs AdaLFL. Ours: MNIST-1D with its MLP and 1-D CNN, Adam at 1e-3, 30 epochs, "
        "2 500 offline steps, 10 seeds per arm. Why: offline data and CPU time",
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
            *([f"**Setting:** {claim.setting}.", ""] if claim.setting else []),
            f"**Measured:** {finding.measured}; Welch's t-test p = {finding.p_value:.3g}. "
            f"**Verdict: {finding.verdict}.**",
            "",
            *([power_note(finding), ""] if power_note(finding) else []),
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
