"""The forward pass of K replicas of one Keras model, their weights stacked on a leading axis.

Every tensor inside the population has shape ``(K, B, ...)``: replica ``k`` sees slice ``k``.
The model's functional graph is walked node by node and each layer is run in the cheapest way
that keeps the replicas independent:

- ``Dense``: one batched matmul, ``(K, B, i) @ (K, i, o)``.
- ``Conv1D``/``Conv2D`` (channels last, no groups): one grouped convolution whose K groups are
  the replicas (the replicas' channels side by side), or, under XLA, which compiles grouped
  convolutions poorly on CPU (30x slower than separate ones), the windows of the input cut out
  by strided slices and multiplied with each replica's kernel in one batched matmul. The
  patches serve too where the device cannot differentiate a grouped convolution (TensorFlow's
  CPU kernel for the filter gradient of a grouped convolution fails on many builds).
- layers without variables (activations, pooling, flatten, reshape, merges) and
  ``Normalization``, whose statistics are fixed: the replica axis folded into the batch axis,
  ``(K·B, ...)``; where the replicas' statistics differ (``replica_models`` built on different
  data splits), ``(h - μ_k) / max(√σ²_k, ε)`` with the K statistics stacked.
- ``Dropout``: one mask per batch for all replicas, the mask each replica would draw alone from
  the same seed.
- any other layer with variables, trainable or not (batch normalization, also without centre
  and scale; other random layers, whose seed state is a variable; custom layers keeping state
  with ``add_weight``): K calls of the layer's ``stateless_call``, each with its replica's
  weights and its own copy of the non-trainable state, so that no statistic, moving average or
  random draw is shared. A layer holding TensorFlow variables that Keras does not track cannot be
  copied per replica and is refused.

Replica ``k``'s outputs depend only on slice ``k`` of the weights, so gradients do not mix and a
non-finite replica cannot disturb the others.
"""

from __future__ import annotations

import functools
import itertools
import math

import keras
import numpy as np
import tensorflow as tf

from metaloss.losses._base import invalid_value

__all__ = ["PopulationGraph"]

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D)
# Layers whose non-trainable variables their call only reads: folding them shares nothing.
_FIXED_STATE = (keras.layers.Normalization,)


def _functional(model: keras.Model):
    """The functional graph behind ``model`` (a Sequential model keeps one once built)."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_run_through_graph"):
        raise invalid_value(
            "model",
            "a built functional or Sequential keras.Model (population training walks its graph)",
            type(model).__name__,
        )
    return graph


def _graph_layers(graph) -> list:
    """The layers of a functional graph, in its operations' order."""
    return [op for op in graph.operations if isinstance(op, keras.layers.Layer)]


def _fold(tensor):
    """``(K, B, ...)`` -> ``(K·B, ...)``."""
    shape = tf.shape(tensor)
    return tf.reshape(tensor, tf.concat([[-1], shape[2:]], axis=0))


def _unfold(tensor, size: int):
    """``(K·B, ...)`` -> ``(K, B, ...)``."""
    shape = tf.shape(tensor)
    return tf.reshape(tensor, tf.concat([[size, -1], shape[1:]], axis=0))


def _untracked_variables(layer) -> list[str]:
    """Attributes of ``layer`` holding TensorFlow variables that are not Keras variables."""
    names = []
    for name, value in vars(layer).items():
        if isinstance(value, dict):
            value = list(value.values())
        if any(isinstance(v, tf.Variable) for v in (value if isinstance(value, list) else [value])):
            names.append(name)
    return names


def _map_tensors(fn, structure):
    return tf.nest.map_structure(lambda t: fn(t) if tf.is_tensor(t) else t, structure)


@functools.cache
def grouped_convolutions_train() -> bool:
    """Whether this device computes the filter gradient of a grouped convolution.

    TensorFlow's ``Conv2DBackpropFilter`` kernel for CPUs rejects grouped filters on many builds
    ("filter_size does not have enough elements"), while GPUs (cuDNN) support them. One tiny
    gradient, run eagerly once per process, tells which case holds.
    """
    x = tf.ones([1, 4, 4, 2])
    kernel = tf.ones([3, 3, 1, 2])  # two groups of one input channel
    try:
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            out = tf.reduce_sum(tf.nn.convolution(x, kernel, padding="SAME"))
        tape.gradient(out, kernel).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return False
    return True


class PopulationGraph:
    """K replicas of ``model``: stacked trainable (and per-replica non-trainable) variables and
    the forward pass that runs them all at once.

    Args:
        model: a built functional or Sequential Keras model (the template).
        size: the number of replicas K.
        initial_weights: ``None`` (every replica starts from ``model``'s weights) or K lists of
            trainable-weight arrays in ``model.trainable_variables`` order.
        replica_models: ``None``, or K models of ``model``'s architecture that the replicas
            start from, weights, non-trainable state and normalization statistics alike
            (replica k from ``replica_models[k]``, which :meth:`load_replica` then fills).
            Excludes ``initial_weights``.
        convolutions: `"grouped"` (one grouped convolution whose groups are the replicas) or
            `"patches"` (the windows as strided slices, then one batched matmul), chosen by
            measurement (``tools/bench_population.py``): grouped without XLA, patches under
            XLA, which compiles grouped convolutions poorly on CPU.
    """

    def __init__(
        self,
        model,
        size: int,
        initial_weights=None,
        *,
        convolutions="grouped",
        replica_models=None,
    ):
        self.model = model
        self.size = size
        self.convolutions = convolutions
        self._graph = _functional(model)
        self.replica_models = self._check_replica_models(replica_models, initial_weights)
        if self.replica_models is not None:
            initial_weights = [
                [v.numpy() for v in m.trainable_variables] for m in self.replica_models
            ]
        templates = model.trainable_variables
        if initial_weights is None:
            initial_weights = [[v.numpy() for v in templates]] * size
        self.trainable = []
        self._stacked = {}
        for index, template in enumerate(templates):
            values = [weights[index] for weights in initial_weights]
            variable = tf.Variable(
                tf.stack([tf.cast(v, template.dtype) for v in values]),
                trainable=True,
                name=template.path.replace("/", "_"),
            )
            self.trainable.append(variable)
            self._stacked[id(template)] = variable
        # Each replica model's layers, in the template's order (same architecture).
        replica_layers = (
            None
            if self.replica_models is None
            else [_graph_layers(_functional(m)) for m in self.replica_models]
        )
        # Normalization statistics that differ between the replicas, stacked on their axis.
        self._statistics = {}
        for index, layer in enumerate(self._layers()):
            if type(layer) in _FIXED_STATE and replica_layers is not None:
                copies = [layers[index] for layers in replica_layers]
                mean = [keras.ops.convert_to_numpy(c.mean) for c in copies]
                variance = [keras.ops.convert_to_numpy(c.variance) for c in copies]
                if any((m != mean[0]).any() for m in mean) or any(
                    (v != variance[0]).any() for v in variance
                ):
                    self._statistics[id(layer)] = (
                        tf.constant(np.stack(mean), dtype=layer.compute_dtype),
                        tf.constant(np.stack(variance), dtype=layer.compute_dtype),
                    )
        # Per-replica copies of the state of layers that run unrolled (e.g. batch statistics).
        self._replica_state = {}
        for index, layer in enumerate(self._layers()):
            untracked = _untracked_variables(layer)
            if untracked:
                raise invalid_value(
                    "model",
                    "layers that keep their state in Keras variables (``add_weight``), which "
                    "each replica gets a copy of",
                    f"layer {layer.name!r} ({type(layer).__name__}) holding TensorFlow variables "
                    f"Keras does not track ({', '.join(untracked)}), which the replicas would "
                    "share",
                )
            if self._runs_unrolled(layer):
                sources = (
                    [layer] * size
                    if replica_layers is None
                    else [layers[index] for layers in replica_layers]
                )
                self._replica_state[id(layer)] = [
                    [tf.Variable(v.value, trainable=False) for v in source.non_trainable_variables]
                    for source in sources
                ]

    def _check_replica_models(self, replica_models, initial_weights):
        if replica_models is None:
            return None
        expected = (
            f"{self.size} keras models of the template's architecture, and no initial_weights"
        )
        if initial_weights is not None or len(replica_models) != self.size:
            raise invalid_value("replica_models", expected, replica_models)
        shapes = [tuple(v.shape) for v in self.model.weights]
        for model in replica_models:
            if not isinstance(model, keras.Model) or [tuple(v.shape) for v in model.weights] != (
                shapes
            ):
                raise invalid_value("replica_models", expected, model)
        return list(replica_models)

    def _layers(self):
        return _graph_layers(self._graph)

    def replica_state(self, index: int) -> list:
        """Replica ``index``'s own copies of the non-trainable variables of the layers that run
        unrolled (moving statistics, seed states...)."""
        return [v for states in self._replica_state.values() for v in states[index]]

    def start_epoch(self, seeds, epoch: int) -> None:
        """Sets the model's seed generators, and every replica's copies of them, to their state
        for ``epoch`` (``seeds``: the ``EpochSeeds`` of the template, as the Trainer keeps)."""
        seeds.start_epoch(epoch)
        generators = {id(g.state): g.state for g in seeds.generators}
        for layer in self._layers():
            for states in self._replica_state.get(id(layer), []):
                for template, state in zip(layer.non_trainable_variables, states, strict=True):
                    if id(template) in generators:
                        state.assign(template.value)

    def _runs_unrolled(self, layer) -> bool:
        """Whether ``layer`` runs once per replica: it holds variables (weights, statistics or
        seed state) and no batched path does the same."""
        if not layer.variables or type(layer) is keras.layers.Dropout:
            return False
        if type(layer) in _FIXED_STATE:
            return False
        return not (self._is_plain_dense(layer) or self._is_plain_convolution(layer))

    @staticmethod
    def _is_plain_dense(layer) -> bool:
        return (
            type(layer) is keras.layers.Dense
            and not layer.non_trainable_variables  # a frozen layer has no stacked weights
            and layer.quantization_mode is None
            and getattr(layer, "lora_rank", None) is None
        )

    @staticmethod
    def _is_plain_convolution(layer) -> bool:
        return (
            type(layer) in _CONVOLUTIONS
            and not layer.non_trainable_variables
            and layer.data_format == "channels_last"
            and layer.groups == 1
            and layer.padding in ("valid", "same")
        )

    # Weights ----------------------------------------------------------------------------------

    def replica_weights(self, index: int) -> list:
        """Replica ``index``'s trainable weights, in ``model.trainable_variables`` order."""
        return [v[index].numpy() for v in self.trainable]

    def load_replica(self, index: int) -> keras.Model:
        """Writes replica ``index``'s weights (and state) into the template model, or into
        ``replica_models[index]`` when given (it holds the replica's own statistics); returns
        that model."""
        model = self.model if self.replica_models is None else self.replica_models[index]
        for template, target in zip(
            self.model.trainable_variables, model.trainable_variables, strict=True
        ):
            target.assign(self._stacked[id(template)][index])
        for layer, target in zip(self._layers(), _graph_layers(_functional(model)), strict=True):
            if id(layer) in self._replica_state:  # shared state (e.g. normalization) stays
                states = self._replica_state[id(layer)][index]
                for variable, state in zip(target.non_trainable_variables, states, strict=True):
                    variable.assign(state)
        return model

    # Forward ----------------------------------------------------------------------------------

    def __call__(self, x, training: bool, *, per_replica: bool = False):
        """Logits of every replica for the shared batch ``x`` (or, with ``per_replica``, for
        its own batch ``x[k]`` of ``x`` shaped ``(K, B, ...)``): shape ``(K, B, ...)``."""
        stacked = x
        if not per_replica:
            stacked = _map_tensors(
                lambda t: tf.broadcast_to(t[None], tf.concat([[self.size], tf.shape(t)], 0)), x
            )
        return self._graph._run_through_graph(
            stacked, operation_fn=lambda op: self._operation(op, training)
        )

    def _operation(self, operation, training):
        if id(operation) in self._statistics:
            return lambda h: self._normalization(operation, h)
        if isinstance(operation, keras.layers.Layer) and self._is_plain_dense(operation):
            return lambda h: self._dense(operation, h)
        if isinstance(operation, keras.layers.Layer) and self._is_plain_convolution(operation):
            return lambda h: self._convolution(operation, h)
        if type(operation) is keras.layers.Dropout:
            return lambda h, **kw: self._dropout(operation, training, h, kw)
        if isinstance(operation, keras.layers.Layer) and self._runs_unrolled(operation):
            return lambda *a, **kw: self._unrolled(operation, training, a, kw)
        return lambda *a, **kw: self._folded(operation, training, a, kw)

    def _normalization(self, layer, h):
        """``Normalization`` with each replica's statistics, as ``layer.call`` computes them."""
        mean, variance = self._statistics[id(layer)]  # (K, 1, ..., C): broadcasts per replica
        h = tf.cast(h, layer.compute_dtype)
        scale = tf.maximum(tf.sqrt(variance), keras.backend.epsilon())
        return mean + h * scale if layer.invert else (h - mean) / scale

    def _kernel_and_bias(self, layer):
        kernel = self._stacked[id(layer._kernel)]
        bias = self._stacked[id(layer.bias)] if layer.use_bias else None
        return kernel, bias

    def _dense(self, layer, h):
        kernel, bias = self._kernel_and_bias(layer)
        h = tf.cast(h, kernel.dtype)
        shape = tf.shape(h)
        flat = tf.reshape(h, [self.size, -1, shape[-1]])
        out = tf.matmul(flat, kernel)
        out = tf.reshape(out, tf.concat([shape[:-1], [kernel.shape[-1]]], 0))
        if bias is not None:
            out = out + tf.reshape(bias, [self.size] + [1] * (len(h.shape) - 2) + [-1])
        return layer.activation(out)

    def _convolution(self, layer, h):
        kernel, bias = self._kernel_and_bias(layer)  # (K, *window, C, F)
        h = tf.cast(h, kernel.dtype)
        options = {
            "strides": layer.strides,
            "padding": layer.padding.upper(),
            "dilations": layer.dilation_rate,
        }
        spatial = len(layer.kernel_size)
        if self.convolutions == "patches":
            out = self._patch_convolution(layer, h, kernel)
        else:
            # (K, B, *S, C) -> (B, *S, K·C): group k of the convolution is replica k.
            channels, filters = kernel.shape[-2], kernel.shape[-1]
            order = [1, *range(2, 2 + spatial), 0, 2 + spatial]
            grouped = tf.transpose(h, order)
            grouped = tf.reshape(grouped, tf.concat([tf.shape(grouped)[:-2], [-1]], 0))
            window = tf.transpose(kernel, [*range(1, 1 + spatial), 1 + spatial, 0, 2 + spatial])
            window = tf.reshape(window, [*layer.kernel_size, channels, self.size * filters])
            out = tf.nn.convolution(grouped, window, **options)
            out = tf.reshape(out, tf.concat([tf.shape(out)[:-1], [self.size, filters]], 0))
            out = tf.transpose(out, [1 + spatial, 0, *range(1, 1 + spatial), 2 + spatial])
        if bias is not None:
            out = out + tf.reshape(bias, [self.size] + [1] * (spatial + 1) + [-1])
        return layer.activation(out)

    def _patch_convolution(self, layer, h, kernel):
        """Convolution as one batched matmul: the windows of ``h`` (strided slices, one per
        kernel offset) against each replica's kernel, ``(K, B·S', window·C) @ (K, window·C, F)``.
        """
        spatial = len(layer.kernel_size)
        sizes = h.shape[2 : 2 + spatial]
        if layer.padding == "same":
            pads = [[0, 0], [0, 0]]
            for size, window, stride, dilation in zip(
                sizes, layer.kernel_size, layer.strides, layer.dilation_rate, strict=True
            ):
                span = (window - 1) * dilation + 1
                total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
                pads.append([total // 2, total - total // 2])
            h = tf.pad(h, [*pads, [0, 0]])
            sizes = h.shape[2 : 2 + spatial]
        outputs = [
            (size - (window - 1) * dilation - 1) // stride + 1
            for size, window, stride, dilation in zip(
                sizes, layer.kernel_size, layer.strides, layer.dilation_rate, strict=True
            )
        ]
        windows = []
        for offsets in itertools.product(*(range(w) for w in layer.kernel_size)):
            cuts = [
                slice(o * d, o * d + (n - 1) * s + 1, s)
                for o, d, n, s in zip(
                    offsets, layer.dilation_rate, outputs, layer.strides, strict=True
                )
            ]
            windows.append(h[(slice(None), slice(None), *cuts, slice(None))])
        patches = tf.concat(windows, axis=-1)  # (K, B, *S', window·C), offsets outermost
        flat = tf.reshape(patches, [self.size, -1, patches.shape[-1]])
        out = tf.matmul(flat, tf.reshape(kernel, [self.size, -1, kernel.shape[-1]]))
        return tf.reshape(out, tf.concat([tf.shape(h)[:2], outputs, [kernel.shape[-1]]], 0))

    @staticmethod
    def _with_training(operation, training, kwargs) -> dict:
        """The call's keyword arguments, with the step's ``training`` flag (as Functional does)."""
        if getattr(operation, "_call_has_training_arg", False) and training is not None:
            return {**kwargs, "training": training}
        return kwargs

    def _dropout(self, layer, training, h, kwargs):
        """One mask per batch, shared by the replicas: the mask each would draw alone from the
        same seed, so that populations with dropout train as their replicas would."""
        kwargs = self._with_training(layer, training, kwargs)
        scale = layer(tf.ones_like(h[0]), **kwargs)  # mask / (1 - rate), or ones
        return h * tf.cast(scale, h.dtype)[None]

    def _folded(self, operation, training, args, kwargs):
        kwargs = self._with_training(operation, training, kwargs)
        args, kwargs = _map_tensors(_fold, (args, kwargs))
        outputs = operation(*args, **kwargs)
        return _map_tensors(lambda t: _unfold(t, self.size), outputs)

    def _unrolled(self, layer, training, args, kwargs):
        kwargs = self._with_training(layer, training, kwargs)
        weights = [self._stacked[id(v)] for v in layer.trainable_variables]
        outputs = []
        for k in range(self.size):
            state = self._replica_state[id(layer)][k]
            replica_args, replica_kwargs = _map_tensors(lambda t, k=k: t[k], (args, kwargs))
            out, new_state = layer.stateless_call(
                [w[k] for w in weights],
                [s.value() for s in state],
                *replica_args,
                **replica_kwargs,
            )
            for variable, value in zip(state, new_state, strict=True):
                variable.assign(value)  # as the layer left it (unchanged when not training)
            outputs.append(out)
        return tf.nest.map_structure(lambda *o: tf.stack(o), *outputs)
