"""Evaluate a bundle on a dataset and write the standard report.

If the dataset contains every image of the split recorded in the bundle (``split.json``), the
same split is evaluated, which reproduces the training-time numbers; otherwise, e.g. for a
new hospital's data, every image of the dataset is evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ml.bundle import load_opened_bundle
from ml.datasets import DatasetError, detect_and_load
from ml.manifest import SPLIT_FILE, BundleError, open_bundle
from ml.pipeline import make_dataset
from ml.referral import ReferralRule, referral_metrics
from ml.splits import split_from_json


def evaluate_bundle(
    bundle_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    batch_size: int = 32,
) -> dict[str, Any]:
    """Return ``{"metrics", "report", "selection", "count"}`` and write the report to out_dir."""
    from ml.calibration import calibrate
    from ml.metrics import classification_metrics
    from ml.reports import write_evaluation_report

    bundle_path = Path(bundle_path)
    with open_bundle(bundle_path) as opened:
        loaded = load_opened_bundle(opened)
        split_file = opened.file(SPLIT_FILE)
        recorded = (
            json.loads(split_file.read_text(encoding="utf-8"))
            if split_file is not None and split != "all"
            else None
        )
    manifest = loaded.manifest
    samples = detect_and_load(data_dir)
    selection = "all images of the dataset"
    if recorded is not None:
        try:
            chosen = split_from_json(samples, recorded).parts()[split]
            selection = f"recorded {split} split"
        except DatasetError:
            chosen = samples  # different data: the recorded ids are not all present
    else:
        chosen = samples
    if not chosen:
        raise DatasetError(f"nothing to evaluate: the {selection} is empty")
    class_names = list(manifest["class_names"])
    size = int(manifest["input_size"])
    dataset = make_dataset(chosen, size, batch_size, training=False, cache=False)
    raw = np.asarray(loaded.model.predict(dataset, verbose=0), dtype=np.float64)
    temperature = float(manifest.get("calibration_temperature") or 1.0)
    probs = calibrate(raw, temperature)
    y_true = np.array([s.label_index for s in chosen], dtype=np.int64)
    if len(class_names) != probs.shape[1]:
        raise BundleError(f"bundle outputs {probs.shape[1]} classes, lists {len(class_names)}")
    metrics = classification_metrics(y_true, probs, class_names)
    rule = ReferralRule.from_manifest(manifest.get("decision_thresholds"))
    if rule is not None:
        # The rule was chosen on validation; here is what it does on data it was not chosen on.
        metrics["referral"] = referral_metrics(y_true, probs, class_names, rule)
    report = write_evaluation_report(
        out_dir,
        metrics=metrics,
        y_true=y_true,
        probs=probs,
        class_names=class_names,
        title=f"{manifest.get('name')} ({manifest['architecture']}) on {selection}",
        extra={
            "bundle": str(bundle_path),
            "bundle_manifest_sha256": loaded.manifest_sha256,
            "data": str(data_dir),
            "selection": selection,
            "temperature": temperature,
        },
    )
    return {"metrics": metrics, "report": report, "selection": selection, "count": len(chosen)}
