"""Compiled training: the `Trainer` and `PopulationTrainer`, the `LossClock` callback,
optimizers and schedules."""

from metaloss.training.callbacks import LossClock
from metaloss.training.experiment import (
    ExperimentResult,
    build_model,
    build_optimizer,
    train_experiment,
)
from metaloss.training.population import PopulationTrainer
from metaloss.training.population_study import population_runs
from metaloss.training.schedules import (
    PAPER_SCHEDULES,
    PiecewiseSchedule,
    learning_rate_schedule,
    make_optimizer,
)
from metaloss.training.study import run_seeds, seed_directory, write_study
from metaloss.training.trainer import FitResult, Trainer

__all__ = [
    "PAPER_SCHEDULES",
    "ExperimentResult",
    "FitResult",
    "LossClock",
    "PiecewiseSchedule",
    "PopulationTrainer",
    "Trainer",
    "build_model",
    "build_optimizer",
    "learning_rate_schedule",
    "make_optimizer",
    "population_runs",
    "run_seeds",
    "seed_directory",
    "train_experiment",
    "write_study",
]
