"""Judging a bundle on the frozen evaluation sets: metrics, plots in S3, and what it saw in training.

Used by training runs (the candidate, and the active model when it has no numbers on the set yet) and by
the `modelops.evaluate` task (any registered version, e.g. an imported one).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from ml.bundle import SPLIT_FILE, read_manifest
from webapp.modelops.bundles import bundle_fetch_verified
from webapp.modelops.judging import evaluation_get, judging_sets
from webapp.modelops.models import EvaluationSet, ModelVersion
from webapp.modelops.services.registry import model_evaluation_record
from webapp.modelops.snapshots import evaluation_items, evaluation_set_materialise
from webapp.storage import store

logger = logging.getLogger(__name__)

# Report files kept in S3 with each evaluation (the summary and metrics too, for download).
REPORT_FILES = (
    "confusion_matrix.png",
    "per_class.png",
    "reliability.png",
    "referral_tradeoff.png",
    "summary.md",
)


def _seen_in_training(bundle_dir: Path, evaluation_set: EvaluationSet) -> int | None:
    """Evaluation images the model trained or validated on, from its recorded split (None: unknown).

    Only meaningful for the held-out set: photos from other sources carry their own ids, which say
    nothing about HAM10000's; training snapshots leave those photos out by content instead."""
    if evaluation_set.is_external:
        return None
    manifest = read_manifest(bundle_dir, verify=False)
    if SPLIT_FILE not in manifest["files"]:
        return None
    split = json.loads((bundle_dir / SPLIT_FILE).read_text(encoding="utf-8"))
    used = set(split.get("train", [])) | set(split.get("val", []))
    return len(used & {item["image_id"] for item in evaluation_items(evaluation_set)})


def evaluate_bundle_on_set(
    *, bundle_dir: Path, evaluation_set: EvaluationSet, version_name: str
) -> dict:
    """Evaluate a local bundle; returns the fields of a `ModelEvaluation` (plots already in S3)."""
    from ml.evaluate import evaluate_bundle  # Keras and TensorFlow: only in the worker child

    data_dir = evaluation_set_materialise(evaluation_set)
    with tempfile.TemporaryDirectory(prefix="skinsight-evaluation-") as scratch:
        result = evaluate_bundle(bundle_dir, data_dir, Path(scratch), split="all")
        artefacts = {}
        for name in REPORT_FILES:
            path = Path(scratch) / name
            if path.is_file():
                key = store.evaluation_report_key(version_name, evaluation_set.sha256, name)
                store.put(key, path.read_bytes(), what=f"the evaluation {name} of {version_name}")
                artefacts[name] = key
    return {
        "evaluation_set": evaluation_set,
        "metrics": result["metrics"],
        "artefacts": artefacts,
        "seen_in_training": _seen_in_training(bundle_dir, evaluation_set),
    }


def evaluate_version(version: ModelVersion, evaluation_set: EvaluationSet | None = None) -> list:
    """Evaluate a registered version on ``evaluation_set`` (default: every judging set) wherever it
    has no numbers yet; returns its evaluations on those sets."""
    sets = [evaluation_set] if evaluation_set is not None else judging_sets()
    evaluations = []
    bundle_dir = None
    for judged_on in sets:
        existing = evaluation_get(version, judged_on)
        if existing is None:
            bundle_dir = bundle_dir or bundle_fetch_verified(version)
            fields = evaluate_bundle_on_set(
                bundle_dir=bundle_dir, evaluation_set=judged_on, version_name=version.name
            )
            existing = model_evaluation_record(version=version, **fields)
        evaluations.append(existing)
    return evaluations
