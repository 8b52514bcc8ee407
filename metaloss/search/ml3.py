"""ML3: a loss network learned offline, then frozen, the AdaLFL paper's offline baseline.

The offline phase is :meth:`AdaLFL.initialize` (``S_init`` steps: reset the base weights θ, one
plain inner step ``θ' = θ - α ∇_θ M_φ(y, f_θ(x))``, update φ by ``∇_φ L_T(y', f_θ'(x'))``).
Training then uses ``M_φ`` like any fixed loss: the base step is :class:`Trainer`'s, φ no longer
changes, and no meta-gradient is computed. The difference between :class:`ML3` and
:class:`AdaLFL` on the same seed is therefore exactly AdaLFL's online phase.

References:
    Bechtle, Molchanov, Chebotar, Grefenstette, Righetti, Sukhatme, Meier, *Meta-Learning via
    Learned Loss*, arXiv 1906.05374; Raymond, Chen, Xue, Zhang, *Online Loss Function
    Learning*, arXiv 2301.13247 (ML3 as the offline baseline of AdaLFL).
"""

from __future__ import annotations

from metaloss.search.online import AdaLFL
from metaloss.training.trainer import Trainer

__all__ = ["ML3"]


class ML3(AdaLFL):
    """Trains a model with a learned loss that is frozen after its offline phase.

    Takes :class:`AdaLFL`'s arguments; :meth:`initialize` (or ``run(init_steps=...)``) learns
    the loss exactly as AdaLFL's offline phase does, and :meth:`fit` then trains with that loss
    as a constant: every snapshot holds the same network, ``history`` has no ``meta_loss``, and
    the meta-optimizer is not touched. Checkpoints and resumption are AdaLFL's.

    Example:

    ```python
    data = metaloss.data.load("mnist1d")
    model = metaloss.models.get("mlp", data.input_shape, data.num_classes)
    ml3 = ML3(model, seed=0)
    result = ml3.run(data.train, init_steps=2500, epochs=10, validation=data.validation)
    result.loss                       # the frozen learned loss
    ```
    """

    def _replica_gradients(self, *batch):
        return Trainer._replica_gradients(self, *batch)

    def _replica_apply(self, updates) -> None:
        Trainer._replica_apply(self, updates)

    def _training_batches(self, train, meta_data):
        return train
