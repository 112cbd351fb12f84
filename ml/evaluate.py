"""Evaluate a bundle on a dataset (and on photos from other sources) and write the standard report.

If the dataset contains every image of the split recorded in the bundle (``split.json``), the
same split is evaluated, which reproduces the training-time numbers; otherwise, e.g. for a
new hospital's data, every image of the dataset is evaluated. ``external_dir`` adds a labelled
set from other sources, judged with the same recipe and rules and reported first: it is the
better guess at how the model does on a new clinic's photos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ml.bundle import SPLIT_FILE, BundleError, open_bundle
from ml.bundle.keras_io import with_keras_model
from ml.calibration import calibrate
from ml.datasets import DatasetError, Sample, detect_and_load
from ml.judge import judge
from ml.pipeline import make_dataset, score_dataset
from ml.recipe import ServingRecipe
from ml.splits import split_from_json


def _chosen_samples(samples: list[Sample], recorded: dict | None, split: str) -> tuple[list, str]:
    if recorded is not None:
        try:
            return split_from_json(samples, recorded).parts()[split], f"recorded {split} split"
        except DatasetError:
            pass  # different data: the recorded ids are not all present
    return samples, "all images of the dataset"


def judge_bundle_on(
    model: Any, recipe: ServingRecipe, samples: list[Sample], batch_size: int
) -> tuple[dict[str, Any], np.ndarray]:
    """``judge`` on ``samples``, scored as the bundle serves them, and the calibrated
    probabilities it judged."""
    dataset = make_dataset(samples, recipe.preprocessing, batch_size, training=False, cache=False)
    raw = score_dataset(model, recipe, dataset)
    if len(recipe.class_names) != raw.shape[1]:
        raise BundleError(f"bundle outputs {raw.shape[1]} classes, lists {len(recipe.class_names)}")
    probs = calibrate(raw, recipe.temperature)
    labels = [s.label_index for s in samples]
    attributes = [dict(s.attributes) for s in samples]
    return judge(labels, probs, recipe.class_names, recipe.rules, attributes), probs


def evaluate_bundle(
    bundle_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    batch_size: int = 32,
    external_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Return ``{"metrics", "report", "selection", "count"}`` and write the report to out_dir.

    With ``external_dir``, ``metrics["external"]`` holds the same numbers on those photos.
    """
    from ml.reports import write_evaluation_report

    bundle_path = Path(bundle_path)
    with open_bundle(bundle_path) as opened:
        loaded = with_keras_model(opened)
        split_file = opened.file(SPLIT_FILE)
        recorded = (
            json.loads(split_file.read_text(encoding="utf-8"))
            if split_file is not None and split != "all"
            else None
        )
    manifest = loaded.manifest
    recipe = ServingRecipe.checked(manifest, bundle_path)
    external = detect_and_load(external_dir) if external_dir is not None else None
    chosen, selection = _chosen_samples(detect_and_load(data_dir), recorded, split)
    if not chosen:
        raise DatasetError(f"nothing to evaluate: the {selection} is empty")
    metrics, probs = judge_bundle_on(loaded.model, recipe, chosen, batch_size)
    if external is not None:
        metrics["external"], _ = judge_bundle_on(loaded.model, recipe, external, batch_size)
        metrics["external"]["source"] = str(external_dir)
    y_true = [s.label_index for s in chosen]
    report = write_evaluation_report(
        out_dir,
        metrics=metrics,
        y_true=y_true,
        probs=probs,
        class_names=recipe.class_names,
        title=f"{manifest.get('name')} ({manifest['architecture']}) on {selection}",
        extra={
            "bundle": str(bundle_path),
            "bundle_manifest_sha256": loaded.sha256,
            "data": str(data_dir),
            "selection": selection,
            "temperature": recipe.temperature,
            "test_time_views": ", ".join(recipe.tta.views),
        },
    )
    return {"metrics": metrics, "report": report, "selection": selection, "count": len(chosen)}
