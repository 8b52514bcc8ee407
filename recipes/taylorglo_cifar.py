"""TaylorGLO on CIFAR: search a loss, train with it, and the regularization paper's experiments.

Experiments (``--experiment``):

- ``main``: a TaylorGLO search (CMA-ES from the zero vector, σ0 = 1.2, population 20, partial
  training of about 10% of the full budget, early abort below 0.15 validation accuracy at epoch
  10, fitness = accuracy on a 45k/5k validation split; ``--fitness-seeds R`` averages R seeds,
  ``--reevaluate-top k`` retrains the k best on fresh seeds before crowning one), then full
  training of the best loss and of cross-entropy on N seeds after every seed the search used
  (its R fitness seeds and M re-evaluation seeds: seeds R+M .. R+M+N-1), compared by test
  accuracy (Welch's t-test).
- ``data-utilisation``: ``main`` on a stratified 10% of the training data (search and training).
- ``invariant``: the invariant ablation. Searches with and without the TaylorGLO invariant
  (candidates that break it are rejected untrained) at an equal budget of generations, one pair
  per search seed; compares the best validation accuracy found and the candidates trained.
- ``attraction``: cross-entropy, Baikal and a TaylorGLO loss (``--loss``, else the best loss of
  ``main`` in this output, else the reference code's loss) trained with seeds 0..N-1 while the
  attraction of ``--attraction-samples`` training samples is recorded every epoch; compares the
  fraction of *correctly classified* samples each loss pushes away from zero training error.

Full-scale defaults follow the papers (arXiv 2002.00059 and 2010.00788, and the TaylorGLO
reference code): per model, the partial budget, the full
epochs, the learning-rate schedule and the weight decay (AlexNet 16/164 epochs, 0.1 ×0.1 at 81
and 122, 5e-4; AllCNN-C 35/350, 0.01 ×0.1 at 200/250/300, 1e-3; ResNet-20/32/56, PreResNet-20
20/200, 0.1 ×0.1 at 100 and 150, 1e-4; WRN-16-8 20/200, 0.1 ×0.2 at 60/120/160, 5e-4, dropout
0.3), SGD with momentum 0.9, batch 128, 100 generations (the papers ran "up to" 100), 5 seeds.
CIFAR's files are read from ``--data-dir`` (or the Keras cache, downloading if allowed). Any
other dataset and zoo model work too (then give ``--budget-epochs`` and ``--epochs``).

``--smoke``: scikit-learn's digits, an MLP, 2 generations of 4 candidates trained 2 epochs,
full training 2 epochs, 2 seeds; seconds on a CPU.

Writes ``results.json`` and ``results.md`` (tables, figures, the command), figures, the searches
(``search/``, ``invariant_on/search<k>``, ``invariant_off/search<k>``) with their best losses and
reports, and one run directory per arm and seed. Rerun the same command to resume: searches
continue from their last finished trial, finished training runs are not repeated.

References:
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv 2002.00059 (GECCO 2021); *Effective Regularization Through
    Loss-Function Metalearning*, arXiv 2010.00788.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from metaloss.cli.options import candidate_scoring_options
from metaloss.cli.recipe_tools import apply_smoke, command_line, recipe_options
from metaloss.experiments import (
    comparison_section,
    prepare_output,
    run_printer,
    training_run,
    write_results,
)

# model -> (partial budget epochs, full epochs, schedule, weight decay, zoo spec)
PAPER_SETTINGS = {
    "alexnet": (16, 164, "alexnet", 5e-4, "alexnet"),
    "allcnn_c": (35, 350, "allcnn_c", 1e-3, "allcnn_c"),
    "resnet20": (20, 200, "resnet", 1e-4, "resnet20"),
    "resnet32": (20, 200, "resnet", 1e-4, "resnet32"),
    "resnet56": (20, 200, "resnet", 1e-4, "resnet56"),
    "preresnet20": (20, 200, "resnet", 1e-4, "preresnet20"),
    "wrn": (20, 200, "wrn", 5e-4, "wrn:depth=16,width=8,dropout=0.3"),
}
EXPERIMENTS = ("main", "data-utilisation", "invariant", "attraction")
SMOKE = {
    "dataset": "digits",
    "model": "mlp",
    "generations": 2,
    "population": 4,
    "budget_epochs": 2,
    "epochs": 2,
    "seeds": 2,
    "search_seeds": 2,
    "attraction_samples": 64,
}


def _resolve(p: dict) -> dict:
    """Fills the model-dependent defaults from PAPER_SETTINGS and checks what is left."""
    p = dict(p)
    budget, epochs, schedule, weight_decay, spec = PAPER_SETTINGS.get(
        p["model"], (None, None, "constant", 0.0, p["model"])
    )
    for key, value in (
        ("budget_epochs", budget),
        ("epochs", epochs),
        ("schedule", schedule),
        ("weight_decay", weight_decay),
    ):
        if p[key] is None:
            p[key] = value
    needed = {"invariant": ("budget_epochs",), "attraction": ("epochs",)}
    for key in needed.get(p["experiment"], ("budget_epochs", "epochs")):
        if p[key] is None:
            raise click.BadParameter(
                f"{p['model']!r} has no paper setting; give it explicitly",
                param_hint=f"'--{key.replace('_', '-')}'",
            )
    p["model_spec"] = spec
    if p["subset_fraction"] is None:
        p["subset_fraction"] = 0.1 if p["experiment"] == "data-utilisation" else 1.0
    if not 0 < p["subset_fraction"] <= 1:
        raise click.BadParameter(
            f"expected a fraction in (0, 1], got {p['subset_fraction']}",
            param_hint="'--subset-fraction'",
        )
    return p


def _task(p: dict, seed: int = 0):
    from metaloss.search import SearchTask

    return SearchTask(
        p["dataset"],
        p["model_spec"],
        epochs=p["budget_epochs"],
        batch_size=p["batch_size"],
        learning_rate=p["learning_rate"],
        momentum=p["momentum"],
        weight_decay=p["weight_decay"],
        schedule=p["schedule"],
        validation_split=p["validation_split"],
        subset_fraction=p["subset_fraction"],
        data_dir=p["data_dir"],
        seed=seed,
        jit_compile=p["jit_compile"],
        fitness_seeds=p["fitness_seeds"],
    )


def _search(p: dict, directory: Path, *, seed: int, invariant: bool = True):
    """Runs (or resumes) one search; returns its :class:`~metaloss.search.SearchRecord`."""
    from metaloss.search import TaylorGLOSearch
    from metaloss.search.report import write_report
    from metaloss.search.results import read_search

    tuner = TaylorGLOSearch(
        _task(p),
        generations=p["generations"],
        population_size=p["population"],
        sigma0=p["sigma0"],
        seed=seed,
        invariant=invariant,
        **({"rejected": p["rejected"]} if p["rejected"] else {}),
        reevaluate_top=p["reevaluate_top"],
        reevaluate_seeds=p["reevaluate_seeds"],
        parallel_candidates=p["parallel_candidates"],
        directory=directory,
    )
    tuner.search(verbose=max(p["verbose"], 1))
    write_report(directory)
    return read_search(directory)


def _train(p: dict, loss, **overrides):
    return training_run(p, p["dataset"], p["model_spec"], loss, optimizer="sgd", **overrides)


def _comparison_seeds(p: dict) -> list[int]:
    """N seeds after the search's fitness seeds and its re-evaluation seeds."""
    first = p["fitness_seeds"] + (p["reevaluate_seeds"] if p["reevaluate_top"] else 0)
    if p["loss"] is not None:
        first = 0  # no search: nothing to stay clear of
    return list(range(first, first + p["seeds"]))


def _main(p: dict, output: Path) -> list[dict]:
    from metaloss.training import run_seeds

    if p["loss"] is not None:
        best_loss, notes = p["loss"], [f"TaylorGLO loss given: `{p['loss']}` (no search)."]
    else:
        click.echo(
            f"Search: {p['generations']} generations x {p['population']} candidates, "
            f"{p['budget_epochs']} epochs each"
        )
        record = _search(p, output / "search", seed=p["search_seed"])
        if record.best is None:
            raise click.ClickException("no candidate completed training; there is no best loss")
        best_loss = str(record.best_loss)
        notes = [
            f"Search: {len(record.trials)} candidates trained, {record.rejected} rejected by the "
            f"invariant; fitness the mean of {p['fitness_seeds']} seed(s); crowned trial "
            f"{record.best.trial_id}, search score {record.best.score:.4f}"
            + _reevaluated_note(record)
            + ". Report: `search/report/report.md`."
        ]
    seeds = _comparison_seeds(p)
    click.echo(f"Full training: {p['epochs']} epochs, seeds {seeds[0]}..{seeds[-1]}")
    notes.append(
        f"Full training on seeds {seeds[0]}..{seeds[-1]}, disjoint from the search's."
        if p["loss"] is None
        else f"Full training on seeds {seeds[0]}..{seeds[-1]}."
    )
    arms = {
        label: run_seeds(_train(p, loss), seeds, output / label, on_result=run_printer(label))
        for label, loss in (("cross_entropy", "cross_entropy"), ("taylor_glo", best_loss))
    }
    title = f"TaylorGLO vs cross-entropy, {p['subset_fraction']:.0%} of the training data"
    return [
        comparison_section(
            output, title=title, arms=arms, baseline="cross_entropy", name="main", notes=notes
        )
    ]


def _reevaluated_note(record) -> str:
    state = record.reevaluation or {}
    for entry in state.get("candidates") or []:
        if state.get("complete") and entry.get("trial_id") == state.get("best_trial_id"):
            return (
                f", re-evaluated {entry['mean']:.4f} on seeds "
                f"{', '.join(map(str, entry['seeds']))} (the best of the "
                f"{len(state['candidates'])} re-evaluated)"
            )
    return ""


def _invariant(p: dict, output: Path) -> list[dict]:
    from metaloss.analysis.plots import plot_comparison
    from metaloss.analysis.statistics import (
        COMPARISON_HEADERS,
        compare,
        comparison_rows,
        markdown_table,
    )

    best, trained, curves, records = {}, {}, {}, {}
    for label, use in (("invariant_on", True), ("invariant_off", False)):
        best[label], trained[label], curves[label], records[label] = [], [], [], []
        for k in range(p["search_seeds"]):
            click.echo(f"Search {label}, search seed {k}")
            record = _search(p, output / label / f"search{k}", seed=k, invariant=use)
            records[label].append(record)
            best[label].append(record.best.score if record.best is not None else 0.0)
            trained[label].append(len(record.trials))
            running, curve = 0.0, []
            for generation in record.generations:
                score = generation.get("best_score")
                running = max(running, score if score is not None else 0.0)
                curve.append(running)
            curves[label].append(curve)
    at_equal_generations = compare(best, "invariant_off")
    rows = comparison_rows(at_equal_generations)
    # The same comparison at an equal number of *trained* candidates: the search without the
    # invariant cut off after as many trainings as its paired search with the invariant made.
    equal_training = {
        "invariant_on": best["invariant_on"],
        "invariant_off": [
            max([t.score for t in off.trials[:n] if t.scored], default=0.0)
            for off, n in zip(records["invariant_off"], trained["invariant_on"], strict=True)
        ],
    }
    at_equal_training = compare(equal_training, "invariant_off")
    equal_training_rows = comparison_rows(at_equal_training)
    figure = plot_comparison(
        {
            label: {"best": [sum(c) / len(c) for c in zip(*runs, strict=False)]}
            for label, runs in curves.items()
        },
        output / "invariant_best_so_far.png",
        metric="best",
        title="best validation accuracy so far, mean over search seeds",
        xlabel="generation",
    )
    budget = p["generations"] * p["population"]
    markdown = "\n".join(
        [
            "### Invariant ablation at an equal budget of generations",
            "",
            f"{p['search_seeds']} search seeds, {p['generations']} generations x "
            f"{p['population']} candidates ({budget} proposed per search). Best validation "
            "accuracy found per search; p from Welch's t-test against the search without the "
            "invariant.",
            "",
            markdown_table(COMPARISON_HEADERS, rows),
            markdown_table(
                ("search", "candidates trained (mean)", "rejected untrained (mean)"),
                [
                    (label, sum(n) / len(n), budget - sum(n) / len(n))
                    for label, n in trained.items()
                ],
            ),
            "At an equal number of trained candidates (the search without the invariant cut "
            "off after as many trainings as its paired search with it):",
            "",
            markdown_table(COMPARISON_HEADERS, equal_training_rows),
            f"![best so far]({figure.name})",
            "",
        ]
    )
    return [
        {
            "title": "invariant ablation",
            "metric": "best validation accuracy of the search",
            "baseline": "invariant_off",
            "comparisons": [c.to_dict() for c in at_equal_generations],
            "best_score": best,
            "candidates_trained": trained,
            "equal_training": [c.to_dict() for c in at_equal_training],
            "best_score_equal_training": equal_training,
            "best_so_far": curves,
            "figures": [figure.name],
            "markdown": markdown,
        }
    ]


def _attraction(p: dict, output: Path) -> list[dict]:
    import keras

    from metaloss import data as data_module
    from metaloss import losses
    from metaloss.analysis import AttractionTracker
    from metaloss.analysis.plots import plot_attraction
    from metaloss.analysis.statistics import compare, markdown_table
    from metaloss.search._files import write_json_atomically
    from metaloss.training import run_seeds

    taylor = p["loss"]
    if taylor is None and (output / "search" / "best_loss.json").is_file():
        taylor = str(output / "search" / "best_loss.json")
    if taylor is None:
        taylor = str(
            losses.save(
                losses.TaylorGLO.from_reference_code(
                    losses.REFERENCE_CODE_EXAMPLE, from_logits=True
                ),
                output / "taylor_glo_reference.json",
            )
        )

    def run(loss, *, seed, output):
        data = data_module.load(
            p["dataset"],
            validation_split=p["validation_split"],
            subset_fraction=p["subset_fraction"],
            seed=seed,
            data_dir=p["data_dir"],
        )
        x, y = data.arrays("train")
        n = min(p["attraction_samples"], len(x))
        tracker = AttractionTracker(x[:n], y[:n], losses.get(loss, from_logits=True))
        # Saved when training ends, before the run's results.json: a finished run has it.
        writer = keras.callbacks.LambdaCallback(
            on_train_end=lambda logs: write_json_atomically(
                Path(output) / "attraction.json", tracker.summary()
            )
        )
        return _train(p, loss, callbacks=[tracker, writer])(seed=seed, output=output)

    arms, summaries = {}, {}
    for label, loss in (
        ("cross_entropy", "cross_entropy"),
        ("baikal", "baikal"),
        ("taylor_glo", taylor),
    ):
        arms[label] = run_seeds(
            functools.partial(run, loss),
            range(p["seeds"]),
            output / "attraction" / label,
            on_result=run_printer(label),
        )
        summaries[label] = [
            json.loads((Path(r.output) / "attraction.json").read_text()) for r in arms[label]
        ]
    final = {
        label: [s["pushed_away_correct"][-1] for s in runs] for label, runs in summaries.items()
    }
    train_accuracy = {
        label: sum(s["accuracy"][-1] for s in runs) / len(runs) for label, runs in summaries.items()
    }
    comparisons = compare(final, "cross_entropy")
    figure = plot_attraction(
        {label: runs[0] for label, runs in summaries.items()},
        output / "attraction.png",
        title="attraction, seed 0",
    )
    table = markdown_table(
        (
            "loss",
            "seeds",
            "pushed away (correct samples), last epoch",
            "tracked train accuracy",
            "p (Welch)",
        ),
        [
            (
                c.group,
                c.summary.n,
                str(c.summary),
                train_accuracy[c.group],
                None if c.test is None else f"{c.test.p_value:.3g}",
            )
            for c in comparisons
        ],
    )
    section = comparison_section(
        output,
        title="Attraction near zero training error",
        arms=arms,
        baseline="cross_entropy",
        name="attraction",
        extra={"pushed_away_correct_final": final, "attraction": summaries},
        notes=[
            f"Fraction of the {p['attraction_samples']} tracked training samples that are "
            "classified correctly and that the loss's gradient flow pushes away from a "
            "confident output (dH/dt > 0), at the last epoch:",
            "",
            table,
            f"![attraction]({figure.name})",
        ],
    )
    section["figures"].append(figure.name)
    return [section]


@click.command()
@recipe_options("taylorglo_cifar")
@click.option("--experiment", type=click.Choice(EXPERIMENTS), default="main", show_default=True)
@click.option("--dataset", default="cifar10", show_default=True)
@click.option(
    "--model",
    default="resnet20",
    show_default=True,
    help=f"A zoo model; paper settings exist for {', '.join(PAPER_SETTINGS)}.",
)
@click.option("--generations", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--population", type=click.IntRange(min=2), default=20, show_default=True)
@click.option(
    "--sigma0",
    type=click.FloatRange(min=0, min_open=True),
    default=1.2,
    help="In the reference code's units: steps sigma0 x (1, 1, 1, 2, 6, 1, 2, 2) for theta.",
)
@candidate_scoring_options()
@click.option(
    "--rejected",
    type=click.Choice(["worst", "ranked"]),
    default=None,
    help="What CMA-ES is told of rejected candidates (metaloss search --rejected). Defaults "
    "to metaloss's default.",
)
@click.option(
    "--parallel-candidates",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Candidates trained together in one compiled step.",
)
@click.option("--search-seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--search-seeds",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Search pairs of the invariant ablation.",
)
@click.option("--budget-epochs", type=click.IntRange(min=1), default=None, help="Partial training.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Full training.")
@click.option("--schedule", default=None, help="Learning-rate schedule (the model's by default).")
@click.option("--lr", "learning_rate", type=float, default=None)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--validation-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
)
@click.option(
    "--subset-fraction", type=float, default=None, help="Default 1, or 0.1 for data-utilisation."
)
@click.option("--loss", default=None, help="A TaylorGLO loss (spec or JSON) instead of searching.")
@click.option("--attraction-samples", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--jit-compile/--no-jit-compile", default=None)
def main(**_):
    """TaylorGLO search and training on CIFAR, the invariant ablation and attraction."""
    ctx = click.get_current_context()
    p = _resolve(apply_smoke(ctx, SMOKE))
    output = p["output"]
    settings = prepare_output(output, p, overwrite=p["overwrite"])
    experiment = p["experiment"]
    run = {"main": _main, "data-utilisation": _main, "invariant": _invariant}.get(
        experiment, _attraction
    )
    sections = run(p, output)
    write_results(
        output,
        title=f"TaylorGLO ({experiment}): {p['dataset']} / {p['model']}",
        command=command_line(ctx, "taylorglo_cifar.py"),
        settings=settings,
        sections=sections,
    )


if __name__ == "__main__":
    main()
