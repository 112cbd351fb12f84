"""The model card: what a version is, what it learned from and how it did, in plain language for
everyone signed in, photos from other sources first."""

from __future__ import annotations

from ml.classes import CLASS_NAMES
from ml.referral import ReferralRule, ReferralRuleError
from webapp.modelops.charts import tradeoff_chart
from webapp.modelops.judging import (
    evaluation_get,
    evaluation_set_current,
    external_set_current,
    metric_summary,
)
from webapp.modelops.models import ModelEvent, ModelVersion

ARCHITECTURE_LABELS = {
    "basic_cnn": "a small convolutional network trained from scratch (the source paper's basic CNN)",
    "mobilenet_v2": "MobileNetV2 pretrained on ImageNet photos and fine-tuned on skin-lesion images",
    "densenet169": "DenseNet169 pretrained on ImageNet photos and fine-tuned on skin-lesion images",
}
# Below this recall on the evaluation set, the card says plainly that the model often misses a class.
WEAK_RECALL = 0.5


def _referral_card(manifest: dict, metrics: dict | None) -> dict:
    """The version's referral rule and what it did on validation and on held-out photos."""
    try:
        rule = ReferralRule.from_manifest(manifest.get("decision_thresholds"))
    except ReferralRuleError as exc:
        return {"rule": None, "problem": str(exc)}
    return {
        "rule": rule,
        "validation": rule.validation if rule else None,
        "held_out": (metrics or {}).get("referral"),
        "problem": None,
    }


def _weak_classes(metrics: dict | None, codes) -> list[dict]:
    """The classes the model finds less than WEAK_RECALL of, in ``codes`` order."""
    per_class = (metrics or {}).get("per_class") or {}
    return [
        {"code": code, "name": CLASS_NAMES.get(code, code), "recall": stats["recall"]}
        for code in codes
        if (stats := per_class.get(code)) and stats.get("support") and stats["recall"] < WEAK_RECALL
    ]


def _external_card(version: ModelVersion) -> dict | None:
    """How the version did on photos from other sources: what a patient elsewhere can expect."""
    external_set = external_set_current()
    evaluation = evaluation_get(version, external_set)
    if evaluation is None:
        return {"evaluation_set": external_set, "summary": None} if external_set else None
    metrics = evaluation.metrics
    referral = metrics.get("referral")
    return {
        "evaluation_set": external_set,
        "summary": metric_summary(metrics),
        "referral": referral,
        # Counts, not only shares: "42 of 43" says more than a rounded "about 10 in 10".
        "melanomas_referred": (
            round(referral["melanoma_sensitivity"] * referral["melanomas"])
            if referral and referral.get("melanoma_sensitivity") is not None
            else None
        ),
        "tradeoff": tradeoff_chart(metrics),
        "weak_classes": _weak_classes(metrics, version.class_names),
        "seen_in_training": evaluation.seen_in_training,
    }


def model_card(version: ModelVersion) -> dict:
    """The model's card in plain language, built from its bundle manifest and its evaluation."""
    manifest = version.manifest
    evaluation_set = evaluation_set_current()
    evaluation = evaluation_get(version, evaluation_set)
    metrics = evaluation.metrics if evaluation else None
    source = "the frozen evaluation set"
    if metrics is None and version.metrics:
        metrics = version.metrics
        source = f"its own held-out {version.metrics.get('evaluated_on', 'test')} split"
    summary = metric_summary(metrics) if metrics else None
    per_class = [
        {
            "code": code,
            "name": CLASS_NAMES.get(code, code),
            "stats": (metrics or {}).get("per_class", {}).get(code),
        }
        for code in version.class_names
    ]
    weak = [
        f"{w['name']} ({w['code']}): it finds {w['recall'] * 100:.0f}%"
        for w in _weak_classes(metrics, version.class_names)
    ]
    snapshot = version.snapshot
    return {
        "external": _external_card(version),
        "version": version,
        "architecture_label": ARCHITECTURE_LABELS.get(version.architecture, version.architecture),
        "input_size": manifest.get("input_size"),
        "created_at": manifest.get("created_at"),
        "dataset": {
            "name": snapshot.dataset.name if snapshot else None,
            "description": snapshot.dataset.description if snapshot else "",
            "images": snapshot.image_count if snapshot else None,
            "class_counts": snapshot.class_counts if snapshot else None,
            "sha256": manifest.get("dataset_sha256"),
        },
        "metrics_source": source if metrics else None,
        "evaluation_set": evaluation_set if evaluation else None,
        "seen_in_training": evaluation.seen_in_training if evaluation else None,
        "summary": summary,
        "per_class": per_class,
        "weak_classes": weak,
        "temperature": manifest.get("calibration_temperature"),
        "referral": _referral_card(manifest, metrics),
        "parent": version.parent,
        "training_run": version.training_run,
        "events": ModelEvent.objects.filter(version=version).select_related("actor", "previous")[
            :5
        ],
    }
