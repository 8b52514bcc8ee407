"""Several losses on several seeds as one population: a study for the price of a few runs.

A comparison of losses over seeds (``run_seeds`` once per loss) trains every (loss, seed) run
alone, and for small models each pays more for building, tracing and dispatching its steps than
for its arithmetic. :func:`population_runs` trains them all in one
:class:`~metaloss.training.PopulationTrainer`: replica (loss ℓ, seed s) starts from seed s's
initial weights and trains on seed s's data stream (its split, order and normalization), so it
computes what ``train_experiment(dataset, model, ℓ, seed=s, ...)`` computes, to float
round-off, and its record and files are the same, in the same place
(``<output>/<label>/seed<s>``, as :func:`~metaloss.training.run_seeds` lays them out): a study
interrupted half-way trains only the runs without ``results.json``.

"To float round-off" is per step: long training amplifies round-off (on MNIST-1D's MLP, 30
epochs of SGD at lr 0.1 ended up to 0.065 apart in test accuracy for one seed trained both
ways), so compare arms that were trained the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from metaloss import losses as loss_module
from metaloss.losses._base import invalid_value
from metaloss.training.experiment import (
    LOSS_FILE,
    RESULTS_FILE,
    ExperimentResult,
    _write_outputs,
    build_optimizer,
    setup_experiment,
)
from metaloss.training.population import PopulationTrainer
from metaloss.training.study import seed_directory

__all__ = ["population_runs"]


def population_runs(
    dataset: str,
    model: str,
    losses: Mapping[str, object],
    seeds: Sequence[int],
    output: str | Path | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    optimizer: str = "sgd",
    learning_rate: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    validation_split: float = 0.1,
    subset_fraction: float = 1.0,
    data_dir: str | None = None,
    jit_compile: bool | None = None,
) -> dict[str, list[ExperimentResult]]:
    """Trains every loss on every seed in one population; returns each loss's records.

    Args:
        dataset, model: as :func:`~metaloss.training.train_experiment`.
        losses: ``{label: loss}``, each anything :func:`metaloss.losses.get` accepts (names get
            ``from_logits=True``).
        seeds: the seeds, shared by every loss.
        output: with it, each run writes ``model.keras``, ``loss.json``, ``history.json`` and
            ``results.json`` (last) to ``<output>/<label>/seed<s>``, and runs that already hold
            ``results.json`` are read back instead of trained. Defaults to `None`.
        epochs, batch_size, optimizer, learning_rate, momentum, weight_decay, schedule,
        validation_split, subset_fraction, data_dir, jit_compile: as
            :func:`~metaloss.training.train_experiment`.

    Returns:
        ``{label: [ExperimentResult per seed, in the order of seeds]}``; ``seconds`` of a
        trained run is the population's wall time divided by the number of runs it trained.

    Example:

    ```python
    runs = population_runs("mnist1d", "mlp", {"ce": "cross_entropy", "baikal": "baikal"},
                           seeds=range(10), epochs=30, subset_fraction=0.25)
    welch_t_test([r.test_accuracy for r in runs["baikal"]],
                 [r.test_accuracy for r in runs["ce"]])
    ```
    """
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise invalid_value("seeds", "a non-empty sequence of integers >= 0", seeds)
    if len(set(seeds)) != len(seeds):
        raise invalid_value("seeds", "distinct seeds", seeds)
    if not isinstance(losses, Mapping) or not losses:
        raise invalid_value("losses", "a non-empty {label: loss} mapping", losses)
    output = None if output is None else Path(output)

    def directory(label, seed):
        return None if output is None else seed_directory(output / label, seed)

    records: dict[tuple[str, int], ExperimentResult] = {}
    pending = []
    for label in losses:
        for seed in seeds:
            where = directory(label, seed)
            if where is not None and (where / RESULTS_FILE).is_file():
                records[label, seed] = ExperimentResult.load(where)
            else:
                pending.append((label, seed))
    if pending:
        records.update(
            _train_together(
                dataset,
                model,
                losses,
                pending,
                directory,
                epochs=epochs,
                batch_size=batch_size,
                optimizer=optimizer,
                learning_rate=learning_rate,
                momentum=momentum,
                weight_decay=weight_decay,
                schedule=schedule,
                validation_split=validation_split,
                subset_fraction=subset_fraction,
                data_dir=data_dir,
                jit_compile=jit_compile,
            )
        )
    return {label: [records[label, seed] for seed in seeds] for label in losses}


def _train_together(dataset, model, losses, pending, directory, **settings):
    start = time.perf_counter()
    seeds = sorted({seed for _, seed in pending})
    setups = {
        seed: setup_experiment(
            dataset,
            model,
            seed=seed,
            batch_size=settings["batch_size"],
            validation_split=settings["validation_split"],
            subset_fraction=settings["subset_fraction"],
            data_dir=settings["data_dir"],
        )
        for seed in seeds
    }
    datasets = [setups[seed][0] for seed in seeds]
    loss_objects = [loss_module.get(losses[label], from_logits=True) for label, _ in pending]
    trainer = PopulationTrainer(
        setups[seeds[0]][1],
        loss_objects,
        build_optimizer(
            datasets[0],
            settings["optimizer"],
            settings["learning_rate"],
            momentum=settings["momentum"],
            weight_decay=settings["weight_decay"],
            schedule=settings["schedule"],
        ),
        replica_models=[setups[seed][1] for _, seed in pending],
        streams=[seeds.index(seed) for _, seed in pending],
        jit_compile=settings["jit_compile"],
    )
    validation = [d.validation for d in datasets]
    fits = trainer.fit(
        [d.train_epoch for d in datasets],
        epochs=settings["epochs"],
        validation=None if any(v is None for v in validation) else validation,
        verbose=0,
    )
    tests = trainer.evaluate([d.test for d in datasets])
    seconds = (time.perf_counter() - start) / len(pending)
    records = {}
    for index, ((label, seed), fit, test, loss) in enumerate(
        zip(pending, fits, tests, loss_objects, strict=True)
    ):
        where = directory(label, seed)
        given = losses[label]
        record = ExperimentResult.from_run(
            dataset=dataset,
            model=model,
            loss=given if isinstance(given, str) else type(loss).__name__,
            seed=seed,
            fit=fit,
            test=test,
            seconds=seconds,
            output=where,
        )
        if where is not None:
            network = trainer.replica_model(index)
            network.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
            where.mkdir(parents=True, exist_ok=True)
            loss_module.save(loss, where / LOSS_FILE)
            _write_outputs(where, network, record)
        records[label, seed] = record
    return records
