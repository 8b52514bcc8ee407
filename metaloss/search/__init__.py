"""Loss-function search: TaylorGLO evolution with a CMA-ES KerasTuner oracle.

```python
task = metaloss.search.SearchTask("mnist1d", "mlp", epochs=5)
search = metaloss.search.TaylorGLOSearch(task, generations=4, population_size=8, seed=0,
                                         directory="runs/search")
search.search()
search.best_loss()          # a metaloss.losses.TaylorGLO
```
"""

from metaloss.search.evaluate import CandidateResult, EarlyAbort, SearchTask, evaluate_candidates
from metaloss.search.oracle import CMAESOracle
from metaloss.search.spaces import LossSpace, TaylorGLOInvariant, TaylorGLOSpace
from metaloss.search.tuner import TaylorGLOSearch

__all__ = [
    "CMAESOracle",
    "CandidateResult",
    "EarlyAbort",
    "LossSpace",
    "SearchTask",
    "TaylorGLOInvariant",
    "TaylorGLOSearch",
    "TaylorGLOSpace",
    "evaluate_candidates",
]
