"""Loss-function search: TaylorGLO (CMA-ES) and EvoMAL (genetic programming) through KerasTuner
oracles, AdaLFL and ML3.

```python
task = metaloss.search.SearchTask("mnist1d", "mlp", epochs=5)
search = metaloss.search.TaylorGLOSearch(task, generations=4, population_size=8, seed=0,
                                         fitness_seeds=3, reevaluate_top=5,
                                         directory="runs/search")
search.search()
search.best_loss()          # a metaloss.losses.TaylorGLO

symbolic = metaloss.search.EvoMALSearch(task, generations=4, population_size=10, seed=0,
                                        directory="runs/evomal")
symbolic.search()
symbolic.best_loss()        # a metaloss.losses.SymbolicLoss, its edge weights tuned

result = metaloss.search.online_fit(model, data.train, epochs=10, init_steps=500)   # AdaLFL
result.loss                 # a metaloss.losses.LearnedLoss
frozen = metaloss.search.online_fit(model, data.train, epochs=10, init_steps=500,
                                    method="ml3")  # ML3: learned offline, then frozen
```
"""

from metaloss.search.evaluate import CandidateResult, EarlyAbort, SearchTask, evaluate_candidates
from metaloss.search.evomal import EvoMALOracle, EvoMALSearch, SymbolicSpace
from metaloss.search.ml3 import ML3
from metaloss.search.online import METHODS, AdaLFL, OnlineResult, Snapshot, online_fit
from metaloss.search.oracle import CMAESOracle
from metaloss.search.reevaluation import REEVALUATION_FILE, read_reevaluation
from metaloss.search.spaces import REFERENCE_SCALE, LossSpace, TaylorGLOInvariant, TaylorGLOSpace
from metaloss.search.tuner import TaylorGLOSearch

__all__ = [
    "METHODS",
    "ML3",
    "REEVALUATION_FILE",
    "REFERENCE_SCALE",
    "AdaLFL",
    "CMAESOracle",
    "CandidateResult",
    "EarlyAbort",
    "EvoMALOracle",
    "EvoMALSearch",
    "LossSpace",
    "OnlineResult",
    "SearchTask",
    "Snapshot",
    "SymbolicSpace",
    "TaylorGLOInvariant",
    "TaylorGLOSearch",
    "TaylorGLOSpace",
    "evaluate_candidates",
    "online_fit",
    "read_reevaluation",
]
