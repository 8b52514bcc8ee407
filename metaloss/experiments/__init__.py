"""What experiments share, without any click: settings files, training runs, reports, tables.

The paper recipes (``recipes/``), the benchmarks (``tools/``) and the ``metaloss`` command use
these; so can a user's own experiment script:

```python
from metaloss.experiments import comparison_section, prepare_output, training_run, write_results
from metaloss.training import run_seeds

settings = prepare_output(output, {"epochs": 20, "seeds": 5}, overwrite=False)
arms = {loss: run_seeds(training_run(settings, "digits", "mlp", loss), range(5), output / loss)
        for loss in ("cross_entropy", "baikal")}
section = comparison_section(output, title="Baikal vs CE", arms=arms,
                             baseline="cross_entropy", name="digits")
write_results(output, title="Baikal", command="my_script.py", settings=settings,
              sections=[section])
```
"""

from metaloss._quiet import quiet_tensorflow
from metaloss.experiments.reports import comparison_section, mean_curve, write_results
from metaloss.experiments.runs import TRAINING_OPTIONS, print_run, run_printer, training_run
from metaloss.experiments.settings import (
    SETTINGS_FILE,
    SettingsMismatchError,
    jsonable,
    prepare_output,
)
from metaloss.experiments.tables import format_table

__all__ = [
    "SETTINGS_FILE",
    "TRAINING_OPTIONS",
    "SettingsMismatchError",
    "comparison_section",
    "format_table",
    "jsonable",
    "mean_curve",
    "prepare_output",
    "print_run",
    "quiet_tensorflow",
    "run_printer",
    "training_run",
    "write_results",
]
