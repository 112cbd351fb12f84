"""Train one architecture end to end and write a model bundle plus an evaluation report.

Steps: load data (and the external photos, if any) -> lesion-grouped stratified split -> build
model -> optional learning-rate range test for phase 1 -> phase 1 (whole basic CNN, or the head
of a transfer model on a frozen backbone) -> phase 2 fine-tuning of the top backbone layers
(transfer models) -> best validation weights restored after each phase -> every held-out photo
scored through the bundle's serving recipe (preprocessing, test-time views) -> temperature and
decision rules chosen on validation (the referral threshold on the external photos too) ->
metrics on the test split and the external photos -> bundle.

Output layout under ``out_dir``: ``bundle/`` (the model bundle) and ``report/`` (the evaluation
report, ``predictions.npz`` with the raw validation, test and external outputs, and
``lr_range.png`` when the range test ran). The external photos are never trained on.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.calibration import calibrate
from ml.class_weights import class_weights, sampling_distribution
from ml.classes import CLASSES, NUM_CLASSES
from ml.datasets import (
    DatasetError,
    Sample,
    dataset_fingerprint,
    detect_and_load,
    limit_per_class,
    require_dataset_dir,
)
from ml.decisions import DecisionRules
from ml.judge import judge
from ml.operating_points import choose_top_class_rule
from ml.pipeline import make_dataset, score_dataset
from ml.preprocess import SHADES_OF_GRAY, SHADES_OF_GRAY_POWER, Preprocessing
from ml.progress import TrainingObserver, observer_callback
from ml.recipe import ServingRecipe
from ml.referral import ReferralRule, ReferralRuleError, choose_referral_rule
from ml.splits import grouped_stratified_split
from ml.training_config import TrainConfig, check_label_smoothing
from ml.tta import TestTimeAugmentation

__all__ = ["TrainConfig", "train"]

BUNDLE_SUBDIR = "bundle"
REPORT_SUBDIR = "report"
LR_RANGE_PLOT = "lr_range.png"
PREDICTIONS_FILE = "predictions.npz"
# Batches the range test trains on; a module constant so tests can shorten it.
LR_FINDER_STEPS = 100


def first_set(*values: int | None) -> int:
    """The first value that is not None (0 epochs is a real choice: skip the phase)."""
    return next(v for v in values if v is not None)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def _labels(samples: list[Sample]) -> np.ndarray:
    return np.array([s.label_index for s in samples], dtype=np.int64)


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


def training_loss(
    label_smoothing: float = 0.0, kind: str = "crossentropy", priors: np.ndarray | None = None
) -> Any:
    """The loss on the integer labels the datasets yield; one value per sample, so class weights
    still apply per sample.

    ``crossentropy``, optionally label-smoothed (Keras' sparse form cannot smooth, so targets
    are one-hot encoded inside the loss); ``focal`` (gamma 2: easy photos, mostly nevi, count
    less); ``logit_adjusted`` (Menon et al. 2021): the log of the training class frequencies
    ``priors`` is added to the model's log-probabilities inside the loss only, so the model is
    pushed to separate the rare classes as firmly as the common ones and serves unadjusted.
    """
    check_label_smoothing(label_smoothing)
    if kind == "crossentropy" and not label_smoothing:
        return "sparse_categorical_crossentropy"
    import keras

    ops = keras.ops

    def targets(y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        return ops.one_hot(labels, ops.shape(y_pred)[-1])

    if kind == "focal":

        def focal_crossentropy(y_true: Any, y_pred: Any) -> Any:
            return keras.losses.categorical_focal_crossentropy(
                targets(y_true, y_pred), y_pred, alpha=1.0, gamma=2.0,
                label_smoothing=label_smoothing,
            )  # fmt: skip

        return focal_crossentropy
    if kind == "logit_adjusted":
        if priors is None:
            raise ValueError("the logit-adjusted loss needs the training class frequencies")
        log_priors = ops.convert_to_tensor(np.log(np.maximum(priors, 1e-6)), "float32")

        def logit_adjusted_crossentropy(y_true: Any, y_pred: Any) -> Any:
            logits = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)) + log_priors
            return keras.losses.categorical_crossentropy(
                targets(y_true, y_pred), logits, from_logits=True, label_smoothing=label_smoothing
            )

        return logit_adjusted_crossentropy

    def smoothed_crossentropy(y_true: Any, y_pred: Any) -> Any:
        return keras.losses.categorical_crossentropy(
            targets(y_true, y_pred), y_pred, label_smoothing=label_smoothing
        )

    return smoothed_crossentropy


def class_priors(samples: list[Sample]) -> np.ndarray:
    """Training class frequencies in class order (a class with no image counts as one)."""
    counts = np.bincount(_labels(samples), minlength=NUM_CLASSES).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()


def _run_phase(
    model: Any,
    *,
    make_optimizer: Any,
    learning_rate: float,
    schedule: str,
    train_ds: Any,
    steps_per_epoch: int,
    val_ds: Any,
    epochs: int,
    weights: dict[int, float],
    progress: bool,
    scratch: Path,
    deadline: float | None,
    loss: Any = "sparse_categorical_crossentropy",
    weight_decay: float = 0.0,
    observer: TrainingObserver,
    phase: str,
) -> tuple[dict[str, list[float]], bool]:
    """Fit for ``epochs`` and restore the weights of the epoch with the lowest val loss.

    Returns the history and whether the time budget cut the phase short.
    """
    import keras

    from ml.schedules import learning_rate_logger, time_budget_callback, warmup_cosine

    checkpoint = scratch / f"best-{phase}.weights.h5"
    callbacks: list[Any] = [
        learning_rate_logger(),
        observer_callback(observer, phase),
        keras.callbacks.ModelCheckpoint(
            checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True
        ),
    ]
    if schedule == "cosine":
        total = steps_per_epoch * epochs
        optimizer = make_optimizer(
            warmup_cosine(learning_rate, total, steps_per_epoch), weight_decay
        )
    else:
        optimizer = make_optimizer(learning_rate, weight_decay)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=3, min_lr=1e-7
            )
        )
    budget = time_budget_callback(deadline) if deadline is not None else None
    if budget is not None:
        callbacks.append(budget)
    # Named "accuracy" explicitly: with a custom loss Keras could not infer the sparse form.
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        class_weight=weights,
        callbacks=callbacks,
        # The tf.data pipeline already reshuffles every epoch.
        shuffle=False,
        verbose=2 if progress else 0,
    )
    if checkpoint.exists():
        model.load_weights(checkpoint)
    stopped = bool(budget is not None and budget.stopped)
    return {key: [float(v) for v in values] for key, values in history.history.items()}, stopped


@contextlib.contextmanager
def compute_precision(mixed: bool) -> Iterator[None]:
    """Keras' global dtype policy for the block: ``mixed_float16`` when ``mixed``, else float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def float32_copy(model: Any, spec: Any, image_size: int) -> Any:
    """The same architecture built in float32 with ``model``'s weights (kept in float32 anyway)."""
    copy = spec.build(NUM_CLASSES, image_size, weights=None)
    copy.set_weights(model.get_weights())
    return copy


def _referral_rule(
    y_val: np.ndarray,
    val_probs: np.ndarray,
    external: tuple[np.ndarray, np.ndarray] | None,
    say: Any,
) -> ReferralRule | None:
    """The referral rule chosen on validation (and the external photos, when there are some);
    None (every photo referred) when validation has no melanoma."""
    try:
        rule = choose_referral_rule(y_val, val_probs, CLASSES, external=external)
    except ReferralRuleError as exc:
        say(f"no referral rule: {exc}; the portal will refer every photo this model classifies")
        return None
    sets = [("validation", rule.validation)] + ([("external", rule.external)] if external else [])
    found = "; ".join(
        f"on {name} it refers {numbers['melanoma_sensitivity']:.1%} of {numbers['melanomas']} "
        f"melanomas, {numbers['benign_referral_rate']:.1%} of benign photos"
        for name, numbers in sets
    )
    say(
        f"referral rule: refer when P(malignant) >= {rule.malignant_threshold:.3f} or the top class "
        f"is below {rule.min_confidence:.0%}; {found}"
    )
    return rule


@dataclass(frozen=True)
class Scored:
    """One labelled set's raw model outputs through the serving recipe, and its photos."""

    samples: list[Sample]
    raw: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return _labels(self.samples)

    @property
    def attributes(self) -> list[dict[str, str]]:
        return [dict(s.attributes) for s in self.samples]


def load_external(config: TrainConfig) -> list[Sample]:
    """The external photos of ``config`` (checked before any training), or none."""
    if config.external_dir is None:
        return []
    external = detect_and_load(config.external_dir)
    if not external:
        raise DatasetError(f"{config.external_dir}: no external photos to measure on")
    return external


def choose_decision_rules(
    val: Scored,
    external: Scored | None,
    temperature: float,
    train_samples: list[Sample],
    *,
    top_class: str,
    say: Any,
) -> DecisionRules:
    """Both rules, on calibrated validation outputs; the external photos only tighten the
    referral threshold (they choose thresholds, never weights)."""
    val_probs = calibrate(val.raw, temperature)
    outside = (external.labels, calibrate(external.raw, temperature)) if external else None
    referral = _referral_rule(val.labels, val_probs, outside, say)
    top = None
    if top_class == "balanced":
        top = choose_top_class_rule(val.labels, val_probs, _labels(train_samples), CLASSES)
        say(
            f"top-class rule: prior shift tau {top.tau:g}, never naming a class below "
            f"{top.min_probability:.0%} (validation balanced accuracy "
            f"{top.validation['balanced_accuracy']:.3f})"
        )
    return DecisionRules(referral, top)


def judge_scored(scored: Scored, temperature: float, rules: DecisionRules) -> dict[str, Any]:
    return judge(
        scored.labels, calibrate(scored.raw, temperature), CLASSES, rules, scored.attributes
    )


def train(
    config: TrainConfig, progress: bool = True, observer: TrainingObserver | None = None
) -> Path:
    """Run training as configured and return the path of the written bundle.

    ``observer`` follows the run (stages, batches, epochs) and can stop it: ``TrainingCancelled`` is
    raised at the next batch or step, before anything is written to the bundle folder.
    """
    from ml.architectures import freeze_backbone, get_architecture, unfreeze_top_layers
    from ml.bundle import save_bundle
    from ml.calibration import fit_temperature, log_probabilities
    from ml.pretrained import WEIGHT_FILES, resolve_weights
    from ml.reports import write_evaluation_report

    config.validate()
    observer = observer or TrainingObserver()

    def say(message: str) -> None:
        _say(progress, message)
        observer.stage(message)

    spec = get_architecture(config.architecture)
    out_dir = Path(config.out_dir)
    bundle_dir = out_dir / BUNDLE_SUBDIR
    if bundle_dir.exists() and any(bundle_dir.iterdir()):
        raise FileExistsError(f"{bundle_dir} already holds a bundle; choose a new --out")
    image_size = config.image_size or spec.default_input_size
    batch_size = config.batch_size or spec.batch_size
    head_epochs = first_set(config.head_epochs, config.epochs, spec.head_epochs)
    tune_epochs = first_set(config.fine_tune_epochs, config.epochs, spec.fine_tune_epochs)
    learning_rate = config.learning_rate or spec.learning_rate
    tune_learning_rate = config.fine_tune_learning_rate or spec.fine_tune_learning_rate
    tune_layers = config.fine_tune_layers or spec.fine_tune_layers
    find_lr = (
        config.find_lr
        if config.find_lr is not None
        else spec.find_learning_rate and config.learning_rate is None
    )
    use_pretrained = spec.transfer and not config.no_pretrained
    recipe = serving_recipe(config, image_size, spec.normalisation)
    preprocessing = recipe.preprocessing

    # Cheap checks first: a wrong folder or a missing weights file should fail before minutes of
    # data loading.
    require_dataset_dir(config.data_dir)
    weights_path = resolve_weights(spec.name, config.weights_dir) if use_pretrained else None

    import keras

    keras.utils.set_random_seed(config.seed)
    say(f"loading data from {config.data_dir}")
    samples = detect_and_load(config.data_dir)
    external_samples = load_external(config)
    if config.limit_per_class:
        samples = limit_per_class(samples, config.limit_per_class, config.seed)
    split = grouped_stratified_split(
        samples, config.val_fraction, config.test_fraction, config.seed
    )
    if not split.train or not split.val:
        raise DatasetError(
            f"{config.data_dir}: too few lesions for a train/validation split "
            f"({len(samples)} images); add images or lower --limit-per-class"
        )
    say(
        f"data: {len(samples)} images; split {len(split.train)}/{len(split.val)}/"
        f"{len(split.test)} train/val/test"
        + (f"; {len(external_samples)} external photos to measure on" if external_samples else "")
    )
    fingerprint = dataset_fingerprint(samples)
    loss = training_loss(config.label_smoothing, config.loss, class_priors(split.train))

    # Under mixed precision the model computes in float16; the bundle is saved from a float32 copy.
    with compute_precision(config.mixed_precision):
        model = spec.build(NUM_CLASSES, image_size, weights=weights_path)
        cache = config.cache
        train_ds = make_dataset(
            split.train,
            preprocessing,
            batch_size,
            training=True,
            cache=cache,
            seed=config.seed,
            class_draws=sampling_distribution(split.train, config.sampling),
        )
        val_ds = make_dataset(split.val, preprocessing, batch_size, training=False, cache=cache)
        weights = class_weights(split.train, mode=config.class_weighting)
        steps_per_epoch = math.ceil(len(split.train) / batch_size)
        phase_names = ("head", "fine_tune") if spec.transfer else ("full",)
        planned = [head_epochs] + ([tune_epochs] if spec.transfer and tune_epochs > 0 else [])
        observer.plan(
            [
                {"name": name, "epochs": epochs, "steps_per_epoch": steps_per_epoch}
                for name, epochs in zip(phase_names, planned, strict=False)
            ]
        )

        trainer = augmented(model, config.seed, config.colour_jitter, config.random_crops)
        phases: list[dict[str, Any]] = []
        lr_range: dict[str, Any] | None = None
        started = time.monotonic()
        deadline = started + 60 * config.max_minutes if config.max_minutes else None
        stopped_by_budget = False
        with tempfile.TemporaryDirectory(prefix="skinsight-train-") as scratch:
            if spec.transfer:
                freeze_backbone(model)
            if find_lr:
                lr_range = _find_phase1_learning_rate(
                    trainer, spec, train_ds, weights, out_dir / REPORT_SUBDIR, say
                )
                if config.learning_rate is None:
                    learning_rate = lr_range["suggested"]
            say(f"phase 1: {head_epochs} epoch(s), learning rate {learning_rate:.3g}")
            # What both phases share; each adds its own rate, epochs and name.
            fit = {
                "make_optimizer": spec.make_optimizer,
                "schedule": config.schedule,
                "train_ds": train_ds,
                "steps_per_epoch": steps_per_epoch,
                "val_ds": val_ds,
                "weights": weights,
                "progress": progress,
                "scratch": Path(scratch),
                "deadline": deadline,
                "loss": loss,
                "weight_decay": config.weight_decay,
                "observer": observer,
            }
            history, stopped_by_budget = _run_phase(
                trainer,
                learning_rate=learning_rate,
                epochs=head_epochs,
                phase=phase_names[0],
                **fit,
            )
            phases.append(
                {
                    "name": phase_names[0],
                    "learning_rate": learning_rate,
                    "history": history,
                }
            )
            if stopped_by_budget:
                say(f"time budget of {config.max_minutes:g} min reached in phase 1")
            if spec.transfer and tune_epochs > 0 and not stopped_by_budget:
                unfreeze_top_layers(model, tune_layers)
                say(f"phase 2: fine-tune top {tune_layers} layers, {tune_epochs} epoch(s)")
                history, stopped_by_budget = _run_phase(
                    trainer,
                    learning_rate=tune_learning_rate,
                    epochs=tune_epochs,
                    phase=phase_names[1],
                    **fit,
                )
                if stopped_by_budget:
                    say(f"time budget of {config.max_minutes:g} min reached in phase 2")
                phases.append(
                    {
                        "name": phase_names[1],
                        "learning_rate": tune_learning_rate,
                        "history": history,
                    }
                )
    if config.mixed_precision:
        model = float32_copy(model, spec, image_size)
    seconds = time.monotonic() - started
    observer.check_stop("after training, before evaluation")

    say(
        f"evaluating ({recipe.tta.count} view(s) per photo): temperature and decision rules on "
        "validation, metrics on the held-out split"
        + (" and the external photos" if external_samples else "")
    )
    evaluation_name = "test" if split.test else "val"
    evaluation = split.test or split.val

    def scored(part: list[Sample], dataset: Any = None) -> Scored:
        dataset = dataset or make_dataset(
            part, preprocessing, batch_size, training=False, cache=False
        )
        return Scored(part, score_dataset(model, recipe, dataset))

    val = scored(split.val, val_ds)
    held_out = scored(evaluation)
    external = scored(external_samples) if external_samples else None
    temperature = fit_temperature(log_probabilities(val.raw), val.labels)
    rules = choose_decision_rules(
        val, external, temperature, split.train, top_class=config.top_class, say=say
    )
    metrics = judge_scored(held_out, temperature, rules)
    metrics["evaluated_on"] = evaluation_name
    if external is not None:
        metrics["external"] = judge_scored(external, temperature, rules)
        metrics["external"]["source"] = str(config.external_dir)
    report_dir = out_dir / REPORT_SUBDIR
    report_dir.mkdir(parents=True, exist_ok=True)
    _save_predictions(report_dir, val, held_out, evaluation_name, external, temperature)
    observer.check_stop("before saving the bundle")

    training = {
        "config": config.as_json(),
        "image_size": image_size,
        "batch_size": batch_size,
        "class_weights": {CLASSES[k]: v for k, v in weights.items()},
        "phases": phases,
        "seconds": round(seconds, 1),
        "stopped_by_time_budget": stopped_by_budget,
    }
    if lr_range is not None:
        training["lr_range"] = lr_range
    bundle = save_bundle(
        model,
        bundle_dir,
        architecture=spec.name,
        input_size=image_size,
        class_names=CLASSES,
        preprocessing=preprocessing.describe(spec.normalisation),
        test_time_augmentation=recipe.tta.to_manifest(),
        training=training,
        split=split.to_json(),
        metrics=metrics,
        calibration_temperature=temperature,
        decision_thresholds=rules.to_manifest(),
        pretrained=WEIGHT_FILES.get(spec.name) if use_pretrained else None,
        parent=config.parent,
        dataset_sha256=fingerprint,
        name=out_dir.name,
        # The ONNX export is checked against the Keras model on real held-out images.
        check_images=[sample.path for sample in evaluation],
    )
    write_evaluation_report(
        report_dir,
        metrics=metrics,
        y_true=held_out.labels,
        probs=calibrate(held_out.raw, temperature),
        class_names=CLASSES,
        history=_merge_histories(phases),
        title=f"{spec.name} on {evaluation_name} split",
        extra={"temperature": temperature, "bundle": str(bundle), "seconds": round(seconds, 1)},
    )
    say(f"bundle written to {bundle}")
    return bundle


def serving_recipe(config: TrainConfig, image_size: int, normalisation: str) -> ServingRecipe:
    """The preprocessing and test-time views a run trains, scores and serves with."""
    power = SHADES_OF_GRAY_POWER if config.colour_constancy == SHADES_OF_GRAY else None
    preprocessing = Preprocessing(image_size, config.fit, power)
    return ServingRecipe(
        {
            "input_size": image_size,
            "class_names": list(CLASSES),
            "preprocessing": preprocessing.describe(normalisation),
            "test_time_augmentation": TestTimeAugmentation.named(config.tta).to_manifest(),
        }
    )


def _save_predictions(
    report_dir: Path,
    val: Scored,
    held_out: Scored,
    evaluation_name: str,
    external: Scored | None,
    temperature: float,
) -> None:
    """Raw outputs of every scored set, so decision rules can be studied without retraining."""
    extra = (
        {"external_labels": external.labels, "external_probs": external.raw}
        if external is not None
        else {}
    )
    np.savez_compressed(
        report_dir / PREDICTIONS_FILE,
        class_names=np.array(CLASSES),
        val_labels=val.labels,
        val_probs=val.raw,
        eval_split=np.array(evaluation_name),
        eval_labels=held_out.labels,
        eval_probs=held_out.raw,
        temperature=np.array(temperature),
        **extra,
    )


def _find_phase1_learning_rate(
    trainer: Any,
    spec: Any,
    train_ds: Any,
    weights: dict[int, float],
    report_dir: Path,
    say: Any,
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


def _merge_histories(phases: list[dict[str, Any]]) -> dict[str, list[float]]:
    """One history across phases, so curves show fine-tuning continuing the head training."""
    merged: dict[str, list[float]] = {}
    for phase in phases:
        for key, values in phase["history"].items():
            merged.setdefault(key, []).extend(values)
    return merged
