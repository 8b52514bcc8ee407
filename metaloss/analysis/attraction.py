"""Attraction: does a loss pull each sample toward zero training error, or push it away?

Cross-entropy keeps pulling a correctly classified sample toward its one-hot target, ever more
confident. Baikal and good TaylorGLO losses push back near the target (their optimum for one
sample lies short of ``y_target = 1``): that is their regularization. :func:`attraction`
measures it per sample and loss-agnostically, as the rate of change of the output entropy under
the loss's gradient flow in logit space; :class:`AttractionTracker` records it every epoch of a
real training run.

References:
    Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
    arXiv:2010.00788.
"""

from __future__ import annotations

import keras
import numpy as np

from metaloss.losses._base import invalid_value

__all__ = ["AttractionTracker", "attraction", "labels_for", "pushed_away"]

# A sample is pushed away when the cosine between the entropy gradient and the flow exceeds
# this: it keeps float64 round-off (≈1e-16 relative) from counting as a push.
_COSINE_TOLERANCE = 1e-6


def _loss_reads_logits(loss, from_logits: bool | None) -> bool:
    if from_logits is not None:
        return bool(from_logits)
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    return bool(getattr(loss, "from_logits", config.get("from_logits", False)))


def labels_for(loss, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels as ``loss`` wants them: class ids for Keras's sparse cross-entropy, one-hot else.

    Args:
        loss: the loss the labels are for.
        labels: class ids ``(N,)`` or one-hot labels ``(N, C)``.
        num_classes: ``C``.

    Returns:
        Class ids ``(N,)`` or float64 one-hot labels ``(N, C)``.
    """
    if labels.ndim == 2 and labels.shape[-1] == num_classes:
        if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
            return np.argmax(labels, axis=-1)
        return labels
    ids = labels.reshape(-1).astype(np.int64)
    if np.any(ids < 0) or np.any(ids >= num_classes):
        raise invalid_value("labels", f"class ids in [0, {num_classes})", labels.tolist())
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        return ids
    return np.eye(num_classes)[ids]


def _logits_and_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2 or not np.all(np.isfinite(z)):
        raise invalid_value("logits", "finite logits of shape (N, C >= 2)", getattr(z, "shape", z))
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    if y.shape not in ((z.shape[0],), z.shape):
        raise invalid_value(
            "labels", f"class ids of shape ({z.shape[0]},) or one-hot labels {z.shape}", y.shape
        )
    return z, y


def _flow_terms(loss, z: np.ndarray, labels: np.ndarray, from_logits: bool | None):
    """``∇_z H`` and ``-∇_z L`` per sample, both ``(N, C)`` float64."""
    import tensorflow as tf

    from metaloss.losses import get

    loss = get(loss)
    reads_logits = _loss_reads_logits(loss, from_logits)
    per_sample = loss.call if hasattr(loss, "call") and hasattr(loss, "get_config") else loss
    targets = tf.constant(labels_for(loss, labels, z.shape[1]))
    logits = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        log_p = tf.nn.log_softmax(logits, axis=-1)
        entropy = -tf.reduce_sum(tf.exp(log_p) * log_p)
        inputs = logits if reads_logits else tf.exp(log_p)
        value = tf.reduce_sum(tf.cast(per_sample(targets, inputs), tf.float64))
    entropy_gradient = tape.gradient(entropy, logits).numpy()
    loss_gradient = tape.gradient(value, logits)
    del tape
    flow = -loss_gradient.numpy() if loss_gradient is not None else np.zeros_like(z)
    return entropy_gradient, flow


def attraction(loss, logits, labels, *, from_logits: bool | None = None) -> np.ndarray:
    """Per sample, the rate of change of the output entropy under the loss's gradient flow.

    Formula (``z`` the logits, ``p = softmax(z)``, ``H = -Σ_k p_k log p_k``, ``L`` the sample's
    loss):

    ```
    dH/dt = ∇_z H · (-∇_z L)         ∂H/∂z_k = -p_k (log p_k + H)
    ```

    Negative: the loss pulls the sample toward a confident output (zero training error for a
    correctly classified sample); positive: it pushes the sample away from it. Cross-entropy
    (``-∇_z L = x - p``) never pushes a correctly classified sample away; Baikal does near the
    one-hot target. The magnitude scales with the loss (a learning-rate factor); the sign is
    what compares losses. Entropy also rises when a loss evens out the *non-target*
    probabilities (Baikal's ``log y`` term over every class does, most visibly at
    initialisation), so a positive value far from the target need not mean the target's
    probability falls; near zero training error it does.

    Args:
        loss: any loss :func:`metaloss.losses.get` accepts, or a per-sample callable of
            ``(y_true, y_pred)``.
        logits: the model's logits, shape ``(N, C)``.
        labels: class ids ``(N,)`` (or ``(N, 1)``) or one-hot labels ``(N, C)``.
        from_logits: whether the loss reads logits (``True``) or probabilities (``False``).
            Defaults to `None`: the loss's own ``from_logits`` (probabilities if it has none).

    Returns:
        ``dH/dt`` per sample, float64, shape ``(N,)``.

    Example:

    >>> # A confident, correct sample: cross-entropy pulls it on (negative), Baikal pushes back.
    >>> logits, labels = [[4.0, 0.0, 0.0]], [0]
    >>> float(attraction("cross_entropy:from_logits=true", logits, labels)[0]) < 0
    True
    >>> float(attraction("baikal:from_logits=true", logits, labels)[0]) > 0
    True

    References:
        Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
        arXiv:2010.00788.
    """
    z, y = _logits_and_labels(logits, labels)
    entropy_gradient, flow = _flow_terms(loss, z, y, from_logits)
    return np.sum(entropy_gradient * flow, axis=-1)


def pushed_away(loss, logits, labels, *, from_logits: bool | None = None) -> np.ndarray:
    """Whether the loss pushes each sample away (``dH/dt > 0`` beyond round-off).

    A sample counts as pushed away when the cosine between ``∇_z H`` and the flow ``-∇_z L``
    exceeds ``1e-6``, so that float64 round-off on a confident sample is not counted.

    Args:
        loss: as in :func:`attraction`.
        logits: as in :func:`attraction`.
        labels: as in :func:`attraction`.
        from_logits: as in :func:`attraction`.

    Returns:
        A boolean array of shape ``(N,)``.
    """
    z, y = _logits_and_labels(logits, labels)
    entropy_gradient, flow = _flow_terms(loss, z, y, from_logits)
    return _pushed(entropy_gradient, flow)


def _pushed(entropy_gradient: np.ndarray, flow: np.ndarray) -> np.ndarray:
    rate = np.sum(entropy_gradient * flow, axis=-1)
    scale = np.linalg.norm(entropy_gradient, axis=-1) * np.linalg.norm(flow, axis=-1)
    return rate > _COSINE_TOLERANCE * scale


class AttractionTracker(keras.callbacks.Callback):
    """Records every sample's attraction at the start and after every ``every`` epochs.

    Works under ``model.fit`` and :meth:`metaloss.training.Trainer.fit`. After training,
    ``epochs[i]``, ``values[i]`` (per-sample ``dH/dt``), ``correct[i]`` and ``pushed[i]`` hold
    the record of epoch ``epochs[i]`` (0 = before training), ``last_logits`` the latest logits,
    and :meth:`summary` the fractions of
    samples pushed away: among all samples, and among the correctly classified ones (the
    zero-training-error regime where cross-entropy never pushes and regularizing losses do).

    Args:
        x: the inputs to track (typically a fixed subset of the training set).
        y: their labels, class ids or one-hot.
        loss: the loss whose flow is measured. Defaults to `None`: the model's compiled loss
            (the metaloss ``Trainer`` compiles the model with its loss).
        every: record every this many epochs. Defaults to `1`.
        model_outputs: ``"logits"`` (metaloss's models) or ``"probabilities"`` (a softmax
            output layer; its log is used as logits). Defaults to `"logits"`.
        batch_size: prediction batch size. Defaults to `1024`.

    Example:

    ```python
    tracker = AttractionTracker(x_train[:500], y_train[:500], loss)
    trainer.fit(train, epochs=30, callbacks=[tracker])
    tracker.summary()["pushed_away_correct"]   # per epoch
    ```

    References:
        Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
        arXiv:2010.00788.
    """

    def __init__(
        self,
        x,
        y,
        loss=None,
        *,
        every: int = 1,
        model_outputs: str = "logits",
        batch_size: int = 1024,
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise invalid_value("every", "an integer >= 1", every)
        if model_outputs not in ("logits", "probabilities"):
            raise invalid_value("model_outputs", "'logits' or 'probabilities'", model_outputs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid_value("batch_size", "an integer >= 1", batch_size)
        self.x = np.asarray(x)
        self.y = np.asarray(y)
        if self.x.shape[0] == 0 or self.x.shape[0] != self.y.shape[0]:
            raise invalid_value(
                "y", f"one label per input ({self.x.shape[0]} inputs)", self.y.shape
            )
        self.loss = loss
        self.every = every
        self.model_outputs = model_outputs
        self.batch_size = batch_size
        self.epochs: list[int] = []
        self.values: list[np.ndarray] = []
        self.correct: list[np.ndarray] = []
        self.pushed: list[np.ndarray] = []
        self.last_logits: np.ndarray | None = None

    def _resolve_loss(self):
        loss = self.loss if self.loss is not None else getattr(self.model, "loss", None)
        if loss is None:
            raise invalid_value("loss", "a loss (the model is not compiled with one)", self.loss)
        return loss

    def _logits(self) -> np.ndarray:
        outputs = [
            np.asarray(self.model(self.x[i : i + self.batch_size], training=False))
            for i in range(0, len(self.x), self.batch_size)
        ]
        outputs = np.concatenate(outputs).astype(np.float64)
        if self.model_outputs == "probabilities":
            outputs = np.log(np.clip(outputs, 1e-300, None))
        return outputs

    def record(self, epoch: int) -> None:
        """Measures the tracked samples now and stores the result under ``epoch``."""
        z, labels = _logits_and_labels(self._logits(), self.y)
        entropy_gradient, flow = _flow_terms(self._resolve_loss(), z, labels, None)
        ids = labels if labels.ndim == 1 else np.argmax(labels, axis=-1)
        self.last_logits = z
        self.epochs.append(int(epoch))
        self.values.append(np.sum(entropy_gradient * flow, axis=-1))
        self.correct.append(np.argmax(z, axis=-1) == ids)
        self.pushed.append(_pushed(entropy_gradient, flow))

    def on_train_begin(self, logs=None) -> None:
        if not self.epochs:
            self.record(0)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if (epoch + 1) % self.every == 0:
            self.record(epoch + 1)

    def summary(self) -> dict[str, list]:
        """Per recorded epoch: accuracy, mean ``dH/dt``, fractions pushed away (JSON-ready).

        ``pushed_away_correct`` is ``NaN`` for an epoch with no correctly classified sample.
        """
        pushed_correct = [
            float(np.mean(p[c])) if np.any(c) else float("nan")
            for p, c in zip(self.pushed, self.correct, strict=True)
        ]
        return {
            "epoch": list(self.epochs),
            "accuracy": [float(np.mean(c)) for c in self.correct],
            "mean_attraction": [float(np.mean(v)) for v in self.values],
            "pushed_away": [float(np.mean(p)) for p in self.pushed],
            "pushed_away_correct": pushed_correct,
        }
