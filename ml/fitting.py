"""The fitting step of a training run: build the model, optionally range-test phase 1's learning
rate, then fit phase 1 (the whole basic CNN, or a transfer model's head on a frozen backbone) and
phase 2 (the top backbone layers), each restoring its best validation weights.

Keras is imported inside the functions: the training worker's prefork parent imports ``ml.train``
and must stay free of TensorFlow.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.class_weights import class_weights, sampling_distribution
from ml.classes import CLASSES, NUM_CLASSES
from ml.losses import class_priors, training_loss
from ml.pipeline import make_dataset
from ml.preprocess import Preprocessing
from ml.progress import TrainingObserver, observer_callback
from ml.splits import Split
from ml.training_config import ResolvedConfig

LR_RANGE_PLOT = "lr_range.png"
# Batches the range test trains on; a module constant so tests can shorten it.
LR_FINDER_STEPS = 100

Say = Callable[[str], None]


@dataclass(frozen=True)
class Pipelines:
    """The training and validation datasets a run fits on (validation is scored from it too)."""

    train: Any
    val: Any
    steps_per_epoch: int

    @classmethod
    def build(cls, run: ResolvedConfig, split: Split, preprocessing: Preprocessing) -> Pipelines:
        train = make_dataset(
            split.train,
            preprocessing,
            run.batch_size,
            training=True,
            cache=run.cache,
            seed=run.seed,
            class_draws=sampling_distribution(split.train, run.sampling),
        )
        val = make_dataset(
            split.val, preprocessing, run.batch_size, training=False, cache=run.cache
        )
        return cls(train, val, math.ceil(len(split.train) / run.batch_size))


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class Fitted:
    """What fitting made: the float32 model and the record of how it got there."""

    model: Any
    phases: list[dict[str, Any]]
    class_weights: dict[int, float]
    seconds: float
    stopped_by_time_budget: bool
    lr_range: dict[str, Any] | None

    def training_record(self, run: ResolvedConfig) -> dict[str, Any]:
        """The bundle's ``training.json``."""
        record = {
            "config": run.as_json(),
            "image_size": run.image_size,
            "batch_size": run.batch_size,
            "class_weights": {CLASSES[k]: v for k, v in self.class_weights.items()},
            "phases": self.phases,
            "seconds": round(self.seconds, 1),
            "stopped_by_time_budget": self.stopped_by_time_budget,
        }
        if self.lr_range is not None:
            record["lr_range"] = self.lr_range
        return record

    def history(self) -> dict[str, list[float]]:
        """One history across phases, so curves show fine-tuning continuing the head training."""
        merged: dict[str, list[float]] = {}
        for phase in self.phases:
            for key, values in phase["history"].items():
                merged.setdefault(key, []).extend(values)
        return merged


def augmented(model: Any, seed: int, colour_jitter: float = 0.0, random_crops: bool = False) -> Any:
    """The model behind random flips, rotation, zoom or crops and optional colour jitter.

    Layers are shared, so training this wrapper trains ``model``; the bundle saves ``model``
    alone, so serving never carries augmentation layers.
    """
    import keras

    from ml.augment import build_augmenter

    size = model.input_shape[1:]
    augmenter = build_augmenter(seed, colour_jitter, random_crops)
    return keras.Sequential([keras.Input(shape=size), augmenter, model], name="training")


@contextlib.contextmanager
def compute_precision(mixed: bool) -> Iterator[None]:
    """Keras' global dtype policy for the block: ``mixed_float16`` when ``mixed``, else float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def fit(
    run: ResolvedConfig,
    split: Split,
    pipelines: Pipelines,
    observer: TrainingObserver,
    say: Say,
    *,
    weights_path: Path | None,
    report_dir: Path,
    verbose: bool,
) -> Fitted:
    """Build (from ``weights_path``'s backbone when the run is pretrained) and fit the model as
    ``run`` says; under mixed precision the model computes in float16 and the returned one is a
    float32 copy with its weights. The range test's plot goes into ``report_dir``."""
    from ml.architectures import freeze_backbone, get_architecture, unfreeze_top_layers

    spec = get_architecture(run.architecture)
    loss = training_loss(run.label_smoothing, run.loss, class_priors(split.train))
    weights = class_weights(split.train, mode=run.class_weighting)
    phases = [Phase("head" if run.transfer else "full", run.head_epochs, run.learning_rate)]
    if run.fine_tune_epochs > 0:
        phases.append(Phase("fine_tune", run.fine_tune_epochs, run.fine_tune_learning_rate))
    observer.plan(
        [
            {"name": p.name, "epochs": p.epochs, "steps_per_epoch": pipelines.steps_per_epoch}
            for p in phases
        ]
    )
    started = time.monotonic()
    deadline = started + 60 * run.max_minutes if run.max_minutes else None
    records: list[dict[str, Any]] = []
    lr_range = None
    stopped = False
    fit_phase = _PhaseFit(run, spec, pipelines, weights, loss, observer, deadline, verbose)
    with (
        compute_precision(run.mixed_precision),
        tempfile.TemporaryDirectory(prefix="skinsight-train-") as scratch,
    ):
        model = spec.build(NUM_CLASSES, run.image_size, weights=weights_path)
        trainer = augmented(model, run.seed, run.colour_jitter, run.random_crops)
        if run.transfer:
            freeze_backbone(model)
        if run.find_lr:
            lr_range = _range_test(trainer, spec, pipelines.train, weights, report_dir, say)
            if run.adopt_suggested_rate:
                phases[0] = Phase(phases[0].name, phases[0].epochs, lr_range["suggested"])
        for index, phase in enumerate(phases):
            if index == 0:
                say(f"phase 1: {phase.epochs} epoch(s), learning rate {phase.learning_rate:.3g}")
            else:
                unfreeze_top_layers(model, run.fine_tune_layers)
                say(
                    f"phase 2: fine-tune top {run.fine_tune_layers} layers, {phase.epochs} epoch(s)"
                )
            history, stopped = fit_phase(trainer, phase, Path(scratch))
            records.append(
                {"name": phase.name, "learning_rate": phase.learning_rate, "history": history}
            )
            if stopped:
                say(f"time budget of {run.max_minutes:g} min reached in phase {index + 1}")
                break
    if run.mixed_precision:
        copy = spec.build(NUM_CLASSES, run.image_size, weights=None)
        copy.set_weights(model.get_weights())
        model = copy
    return Fitted(model, records, weights, time.monotonic() - started, stopped, lr_range)


@dataclass(frozen=True)
class _PhaseFit:
    """What every phase of one run shares; called with a phase, it fits it."""

    run: ResolvedConfig
    spec: Any
    pipelines: Pipelines
    weights: dict[int, float]
    loss: Any
    observer: TrainingObserver
    deadline: float | None
    verbose: bool

    def __call__(
        self, trainer: Any, phase: Phase, scratch: Path
    ) -> tuple[dict[str, list[float]], bool]:
        """Fit for the phase's epochs and restore the weights of the epoch with the lowest
        validation loss; return the history and whether the time budget cut the phase short."""
        import keras

        from ml.schedules import learning_rate_logger, time_budget_callback

        checkpoint = scratch / f"best-{phase.name}.weights.h5"
        callbacks: list[Any] = [
            learning_rate_logger(),
            observer_callback(self.observer, phase.name),
            keras.callbacks.ModelCheckpoint(
                checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
        ]
        optimizer, schedule_callbacks = self._optimizer(phase)
        callbacks += schedule_callbacks
        budget = time_budget_callback(self.deadline) if self.deadline is not None else None
        if budget is not None:
            callbacks.append(budget)
        # Named "accuracy" explicitly: with a custom loss Keras could not infer the sparse form.
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        trainer.compile(optimizer=optimizer, loss=self.loss, metrics=[accuracy])
        history = trainer.fit(
            self.pipelines.train,
            validation_data=self.pipelines.val,
            epochs=phase.epochs,
            class_weight=self.weights,
            callbacks=callbacks,
            # The tf.data pipeline already reshuffles every epoch.
            shuffle=False,
            verbose=2 if self.verbose else 0,
        )
        if checkpoint.exists():
            trainer.load_weights(checkpoint)
        stopped = bool(budget is not None and budget.stopped)
        return {key: [float(v) for v in values] for key, values in history.history.items()}, stopped

    def _optimizer(self, phase: Phase) -> tuple[Any, list[Any]]:
        """The phase's optimizer and the callbacks its learning-rate schedule needs."""
        import keras

        from ml.schedules import warmup_cosine

        steps = self.pipelines.steps_per_epoch
        decay = self.run.weight_decay
        if self.run.schedule == "cosine":
            rate = warmup_cosine(phase.learning_rate, steps * phase.epochs, steps)
            return self.spec.make_optimizer(rate, decay), []
        plateau = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=3, min_lr=1e-7
        )
        return self.spec.make_optimizer(phase.learning_rate, decay), [plateau]


def _range_test(
    trainer: Any,
    spec: Any,
    train_ds: Any,
    weights: dict[int, float],
    report_dir: Path,
    say: Say,
) -> dict[str, Any]:
    """Range-test phase 1 as it will run (same wrapper, optimizer kind, data, class weights).

    The plot goes into the report folder now; the report written after training adds its own
    files next to it and leaves this one alone.
    """
    from ml.lr_finder import find_learning_rate, plot_lr_range

    say(f"learning-rate range test: up to {LR_FINDER_STEPS} batches")
    result = find_learning_rate(
        trainer,
        train_ds,
        optimizer_factory=spec.make_optimizer,
        steps=LR_FINDER_STEPS,
        class_weight=weights,
    )
    plot = plot_lr_range(result, report_dir / LR_RANGE_PLOT)
    say(
        f"learning-rate range test: suggested {result.suggested:.3g} "
        f"({len(result.learning_rates)} batches; curve in {plot})",
    )
    return result.as_json()
