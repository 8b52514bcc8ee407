"""A model's random draws (dropout masks, noise layers) as a function of (seed, epoch).

Keras layers draw their randomness from ``keras.random.SeedGenerator`` objects: a state
``(seed, counter)`` whose counter advances by one per draw. A checkpoint of the model does not
hold these states, so a resumed run would draw epoch 0's masks again. Instead, at the start of
epoch ``e`` every generator is set to ``(s_e, 0)`` with ``s_e`` derived from the generator's
initial seed and ``e``; within the epoch the counter advances as usual.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["EpochSeeds"]

_INT31 = 2**31 - 2  # Keras's TensorFlow backend reduces seeds modulo int32.max - 1


def _seed_generators(model: keras.Model) -> list[keras.random.SeedGenerator]:
    generators = []
    for layer in model._flatten_layers(include_self=True):
        generators.extend(getattr(layer, "_seed_generators", []))
    return generators


class EpochSeeds:
    """Sets every seed generator of ``model`` to its state for a given epoch.

    The base seeds are the generators' states when this object is made (Keras draws them from
    the global seed at layer creation, so ``keras.utils.set_random_seed(seed)`` before building
    the model fixes them); :attr:`bases` can be saved and restored with a checkpoint.
    """

    def __init__(self, model: keras.Model) -> None:
        self.generators = _seed_generators(model)
        self.bases = np.array(
            [np.asarray(g.state.numpy(), np.int64) for g in self.generators], np.int64
        ).reshape(-1, 2)

    def states(self, epoch: int) -> np.ndarray:
        """The ``(G, 2)`` generator states at the start of ``epoch``."""
        states = np.zeros_like(self.bases)
        for index, (seed, counter) in enumerate(self.bases):
            words = [int(seed) % 2**63, int(counter) % 2**63, int(epoch)]
            states[index, 0] = 1 + int(np.random.SeedSequence(words).generate_state(1)[0]) % _INT31
        return states

    def start_epoch(self, epoch: int) -> None:
        for generator, state in zip(self.generators, self.states(epoch), strict=True):
            generator.state.assign(state)
