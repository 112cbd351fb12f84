"""Train one architecture end to end and write a model bundle plus an evaluation report.

``train`` resolves its config once (``ResolvedConfig``) and runs these steps, each taking it:
``load_and_split`` (the data and the external photos, if any; a lesion-grouped stratified
split), ``ml.fitting.fit`` (the phases, each restoring its best validation weights),
``score_sets`` (every held-out photo through the bundle's serving recipe: preprocessing and
test-time views), ``calibrate_and_choose`` (temperature and decision rules on validation; the
referral threshold on the external photos too), ``evaluate`` (metrics on the test split and the
external photos) and ``package`` (bundle and report).

Output layout under ``out_dir``: ``bundle/`` (the model bundle) and ``report/`` (the evaluation
report, ``predictions.npz`` with the raw validation, test and external outputs, and
``lr_range.png`` when the range test ran). The external photos are never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.calibration import calibrate
from ml.classes import CLASSES
from ml.datasets import (
    DatasetError,
    Sample,
    dataset_fingerprint,
    detect_and_load,
    limit_per_class,
    require_dataset_dir,
    sample_labels,
)
from ml.decisions import DecisionRules
from ml.fitting import LR_RANGE_PLOT, Fitted, Pipelines, Say, fit
from ml.judge import judge
from ml.operating_points import choose_top_class_rule
from ml.pipeline import make_dataset, score_dataset
from ml.preprocess import SHADES_OF_GRAY, SHADES_OF_GRAY_POWER, Preprocessing
from ml.pretrained import resolve_weights
from ml.progress import TrainingObserver
from ml.recipe import ServingRecipe
from ml.referral import ReferralRule, ReferralRuleError, choose_referral_rule
from ml.splits import Split, grouped_stratified_split
from ml.training_config import ResolvedConfig, TrainConfig
from ml.tta import TestTimeAugmentation

__all__ = ["LR_RANGE_PLOT", "ResolvedConfig", "TrainConfig", "train"]

BUNDLE_SUBDIR = "bundle"
REPORT_SUBDIR = "report"
PREDICTIONS_FILE = "predictions.npz"


def train(
    config: TrainConfig | ResolvedConfig,
    progress: bool = True,
    observer: TrainingObserver | None = None,
) -> Path:
    """Run training as configured and return the path of the written bundle.

    ``observer`` follows the run (stages, batches, epochs) and can stop it: ``TrainingCancelled`` is
    raised at the next batch or step, before anything is written to the bundle folder.
    """
    run = config.resolve() if isinstance(config, TrainConfig) else config
    observer = observer or TrainingObserver()

    def say(message: str) -> None:
        if progress:
            print(message, flush=True)
        observer.stage(message)

    out_dir = Path(run.out_dir)
    if (out_dir / BUNDLE_SUBDIR).exists() and any((out_dir / BUNDLE_SUBDIR).iterdir()):
        raise FileExistsError(
            f"{out_dir / BUNDLE_SUBDIR} already holds a bundle; choose a new --out"
        )
    recipe = serving_recipe(run)
    # Cheap checks first: a wrong folder or a missing weights file fails before minutes of loading.
    require_dataset_dir(run.data_dir)
    weights = resolve_weights(run.architecture, run.weights_dir) if run.pretrained else None
    data = load_and_split(run, say)
    pipelines = Pipelines.build(run, data.split, recipe.preprocessing)
    fitted = fit(
        run,
        data.split,
        pipelines,
        observer,
        say,
        weights_path=weights,
        report_dir=out_dir / REPORT_SUBDIR,
        verbose=progress,
    )
    observer.check_stop("after training, before evaluation")
    say(
        f"evaluating ({recipe.tta.count} view(s) per photo): temperature and decision rules on "
        "validation, metrics on the held-out split"
        + (" and the external photos" if data.external else "")
    )
    scores = score_sets(run, recipe, data, fitted.model, pipelines.val)
    calibration = calibrate_and_choose(run, scores, data.split.train, say)
    metrics = evaluate(run, scores, calibration)
    _save_predictions(out_dir / REPORT_SUBDIR, scores, calibration.temperature)
    observer.check_stop("before saving the bundle")
    return package(run, recipe, data, fitted, scores, calibration, metrics, say)


def serving_recipe(run: ResolvedConfig) -> ServingRecipe:
    """The preprocessing and test-time views a run trains, scores and serves with."""
    power = SHADES_OF_GRAY_POWER if run.colour_constancy == SHADES_OF_GRAY else None
    preprocessing = Preprocessing(run.image_size, run.fit, power)
    return ServingRecipe(
        {
            "input_size": run.image_size,
            "class_names": list(CLASSES),
            "preprocessing": preprocessing.describe(run.normalisation),
            "test_time_augmentation": TestTimeAugmentation.named(run.tta).to_manifest(),
        }
    )


# --- load and split ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """A run's photos: the split of its dataset and the external photos it only measures on."""

    split: Split
    external: list[Sample]
    fingerprint: str

    @property
    def evaluation_name(self) -> str:
        return "test" if self.split.test else "val"

    @property
    def evaluation(self) -> list[Sample]:
        return self.split.test or self.split.val


def load_and_split(run: ResolvedConfig, say: Say) -> Data:
    """The run's data, split by lesion."""
    import keras

    keras.utils.set_random_seed(run.seed)
    say(f"loading data from {run.data_dir}")
    samples = detect_and_load(run.data_dir)
    external = load_external(run)
    if run.limit_per_class:
        samples = limit_per_class(samples, run.limit_per_class, run.seed)
    split = grouped_stratified_split(samples, run.val_fraction, run.test_fraction, run.seed)
    if not split.train or not split.val:
        raise DatasetError(
            f"{run.data_dir}: too few lesions for a train/validation split "
            f"({len(samples)} images); add images or lower --limit-per-class"
        )
    say(
        f"data: {len(samples)} images; split {len(split.train)}/{len(split.val)}/"
        f"{len(split.test)} train/val/test"
        + (f"; {len(external)} external photos to measure on" if external else "")
    )
    return Data(split, external, dataset_fingerprint(samples))


@dataclass(frozen=True)
class Scored:
    """One labelled set's raw model outputs through the serving recipe, and its photos."""

    samples: list[Sample]
    raw: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return sample_labels(self.samples)

    @property
    def attributes(self) -> list[dict[str, str]]:
        return [dict(s.attributes) for s in self.samples]


def load_external(run: ResolvedConfig) -> list[Sample]:
    """The external photos of ``config`` (checked before any training), or none."""
    if run.external_dir is None:
        return []
    external = detect_and_load(run.external_dir)
    if not external:
        raise DatasetError(f"{run.external_dir}: no external photos to measure on")
    return external


# --- score, calibrate and choose the rules, evaluate --------------------------------------------------


@dataclass(frozen=True)
class Scores:
    val: Scored
    held_out: Scored
    held_out_name: str
    external: Scored | None


def score_sets(
    run: ResolvedConfig, recipe: ServingRecipe, data: Data, model: Any, val_ds: Any
) -> Scores:
    """Raw outputs of validation, the held-out split and the external photos, through the
    serving recipe (validation from its already cached pipeline)."""

    def scored(part: list[Sample], dataset: Any = None) -> Scored:
        dataset = dataset or make_dataset(
            part, recipe.preprocessing, run.batch_size, training=False, cache=False
        )
        return Scored(part, score_dataset(model, recipe, dataset))

    return Scores(
        val=scored(data.split.val, val_ds),
        held_out=scored(data.evaluation),
        held_out_name=data.evaluation_name,
        external=scored(data.external) if data.external else None,
    )


@dataclass(frozen=True)
class Calibration:
    temperature: float
    rules: DecisionRules


def calibrate_and_choose(
    run: ResolvedConfig, scores: Scores, train_samples: list[Sample], say: Say
) -> Calibration:
    """The temperature fitted on validation, then both decision rules on calibrated outputs."""
    from ml.calibration import fit_temperature, log_probabilities

    temperature = fit_temperature(log_probabilities(scores.val.raw), scores.val.labels)
    rules = choose_decision_rules(
        scores.val, scores.external, temperature, train_samples, top_class=run.top_class, say=say
    )
    return Calibration(temperature, rules)


def evaluate(run: ResolvedConfig, scores: Scores, calibration: Calibration) -> dict[str, Any]:
    """Metrics on the held-out split and, under ``external``, on the external photos."""
    metrics = judge_scored(scores.held_out, calibration.temperature, calibration.rules)
    metrics["evaluated_on"] = scores.held_out_name
    if scores.external is not None:
        metrics["external"] = judge_scored(
            scores.external, calibration.temperature, calibration.rules
        )
        metrics["external"]["source"] = str(run.external_dir)
    return metrics


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
        top = choose_top_class_rule(val.labels, val_probs, sample_labels(train_samples), CLASSES)
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


# --- package -------------------------------------------------------------------------------------------


def package(
    run: ResolvedConfig,
    recipe: ServingRecipe,
    data: Data,
    fitted: Fitted,
    scores: Scores,
    calibration: Calibration,
    metrics: dict[str, Any],
    say: Say,
) -> Path:
    """Write the bundle, then the evaluation report beside it; return the bundle's path."""
    from ml.bundle.keras_io import save_bundle
    from ml.pretrained import WEIGHT_FILES
    from ml.reports import write_evaluation_report

    out_dir = Path(run.out_dir)
    bundle = save_bundle(
        fitted.model,
        out_dir / BUNDLE_SUBDIR,
        architecture=run.architecture,
        input_size=run.image_size,
        class_names=CLASSES,
        preprocessing=recipe.preprocessing.describe(run.normalisation),
        test_time_augmentation=recipe.tta.to_manifest(),
        training=fitted.training_record(run),
        split=data.split.to_json(),
        metrics=metrics,
        calibration_temperature=calibration.temperature,
        decision_thresholds=calibration.rules.to_manifest(),
        pretrained=WEIGHT_FILES.get(run.architecture) if run.pretrained else None,
        parent=run.parent,
        dataset_sha256=data.fingerprint,
        name=out_dir.name,
        # The ONNX export is checked against the Keras model on real held-out images.
        check_images=[sample.path for sample in data.evaluation],
    )
    held_out = scores.held_out
    write_evaluation_report(
        out_dir / REPORT_SUBDIR,
        metrics=metrics,
        y_true=held_out.labels,
        probs=calibrate(held_out.raw, calibration.temperature),
        class_names=CLASSES,
        history=fitted.history(),
        title=f"{run.architecture} on {scores.held_out_name} split",
        extra={
            "temperature": calibration.temperature,
            "bundle": str(bundle),
            "seconds": round(fitted.seconds, 1),
        },
    )
    say(f"bundle written to {bundle}")
    return bundle


def _save_predictions(report_dir: Path, scores: Scores, temperature: float) -> None:
    """Raw outputs of every scored set, so decision rules can be studied without retraining."""
    external = scores.external
    extra = (
        {"external_labels": external.labels, "external_probs": external.raw}
        if external is not None
        else {}
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        report_dir / PREDICTIONS_FILE,
        class_names=np.array(CLASSES),
        val_labels=scores.val.labels,
        val_probs=scores.val.raw,
        eval_split=np.array(scores.held_out_name),
        eval_labels=scores.held_out.labels,
        eval_probs=scores.held_out.raw,
        temperature=np.array(temperature),
        **extra,
    )
