"""How a version is judged: the sets it is measured on, its numbers there, the promotion gate, and the
comparison with the active model that the version page and the API show."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from ml.classes import CLASS_NAMES, CLASSES
from webapp.modelops.charts import tradeoff_chart
from webapp.modelops.models import (
    EvaluationSet,
    EvaluationSetKind,
    ModelEvaluation,
    ModelVersion,
)
from webapp.modelops.selectors import model_version_get_active

# The two numbers promotion guards, with how the page names them.
GATED_METRICS = (
    ("balanced_accuracy", "Balanced accuracy"),
    ("melanoma_sensitivity", "Melanoma sensitivity"),
)


# The comparison table: key of `metric_summary`, label, and whether a higher number is better.
SUMMARY_ROWS = (
    ("balanced_accuracy", "Balanced accuracy (mean recall over the 7 classes)", True),
    ("melanoma_sensitivity", "Melanoma sensitivity (melanomas found)", True),
    ("melanoma_specificity", "Melanoma specificity (non-melanomas not called melanoma)", True),
    ("accuracy", "Accuracy", True),
    ("macro_f1", "Macro F1", True),
    ("macro_auc", "Macro ROC AUC", True),
    ("ece", "Calibration error (ECE, lower is better)", False),
)


def evaluation_set_current() -> EvaluationSet | None:
    """The held-out evaluation set: the first ever carved (later runs are judged on it too)."""
    return (
        EvaluationSet.objects.filter(kind=EvaluationSetKind.HELD_OUT)
        .select_related("dataset")
        .order_by("created_at", "id")
        .first()
    )


def external_sets() -> QuerySet[EvaluationSet]:
    return EvaluationSet.objects.filter(kind=EvaluationSetKind.EXTERNAL)


def external_set_current() -> EvaluationSet | None:
    """The photos from other sources models are judged on: the latest registered (a better set
    replaces an older one; both models of a comparison are evaluated on the same one)."""
    return external_sets().order_by("-created_at", "-id").first()


def judging_sets() -> list[EvaluationSet]:
    """Every set a model is judged on, photos from other sources first (they say more)."""
    return [s for s in (external_set_current(), evaluation_set_current()) if s is not None]


def evaluation_get(version: ModelVersion, evaluation_set: EvaluationSet | None):
    if evaluation_set is None:
        return None
    return ModelEvaluation.objects.filter(
        model_version=version, evaluation_set=evaluation_set
    ).first()


def metric_summary(metrics: dict) -> dict:
    """The headline numbers of a `classification_metrics` dict, flat, for tables and the gate."""
    melanoma = metrics.get("melanoma") or {}
    return {
        "n": metrics.get("n"),
        "accuracy": metrics.get("accuracy"),
        "balanced_accuracy": metrics.get("balanced_accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "melanoma_sensitivity": melanoma.get("sensitivity"),
        "melanoma_specificity": melanoma.get("specificity"),
        "ece": metrics.get("ece"),
        "macro_auc": (metrics.get("roc_auc") or {}).get("macro"),
    }


def promotion_gate(candidate: ModelVersion) -> dict:
    """What promoting ``candidate`` would change, and whether it may happen without a reason.

    Judged on every set in ``judging_sets``: the held-out split and, once registered, photos from
    other sources. Refused (``passed`` false) when the candidate or the active model lacks an
    evaluation on one of them, or when balanced accuracy or melanoma sensitivity falls by more
    than the margin on either: a model may not buy its own split's numbers with other photos'.
    """
    evaluation_set = evaluation_set_current()
    external_set = external_set_current()
    active = model_version_get_active()
    gate: dict = {
        "evaluation_set": evaluation_set.sha256 if evaluation_set else None,
        "external_set": external_set.sha256 if external_set else None,
        "margin": settings.PROMOTION_MAX_DROP,
        "candidate": candidate.name,
        "active": active.name if active else None,
        "checks": [],
        "reasons": [],
        "warnings": [],
    }
    if active is not None and active.pk == candidate.pk:
        gate["reasons"].append(f"{candidate.name} is already the active model.")
    if evaluation_set is None:
        gate["reasons"].append("No evaluation set exists yet, so the candidate cannot be judged.")
    if external_set is None:
        gate["warnings"].append(
            "No photos from other sources are registered: the candidate is judged on its own "
            "dataset's split only, which flatters every model."
        )
    for judged_on in judging_sets():
        _gate_on_set(gate, candidate, active, judged_on)
    gate["passed"] = not gate["reasons"]
    return gate


def _set_phrase(evaluation_set: EvaluationSet) -> str:
    if evaluation_set.is_external:
        return f"the photos from other sources {evaluation_set.name} ({evaluation_set.sha256[:12]})"
    return f"evaluation set {evaluation_set.sha256[:12]}"


def _gate_on_set(gate: dict, candidate, active, evaluation_set: EvaluationSet) -> None:
    reasons, margin = gate["reasons"], gate["margin"]
    where = _set_phrase(evaluation_set)
    mine = evaluation_get(candidate, evaluation_set)
    theirs = evaluation_get(active, evaluation_set) if active else None
    if mine is None:
        reasons.append(f"{candidate.name} has not been evaluated on {where}.")
    if active is not None and theirs is None:
        reasons.append(
            f"The active model {active.name} has not been evaluated on {where}, so there is "
            "nothing to compare with."
        )
    for who, evaluation in ((candidate.name, mine), ("The active model", theirs)):
        if evaluation is not None and evaluation.seen_in_training:
            gate["warnings"].append(
                f"{who} saw {evaluation.seen_in_training} of the images of {where} in training: "
                "its numbers there are optimistic."
            )
    if mine is None or theirs is None:
        return
    new, old = metric_summary(mine.metrics), metric_summary(theirs.metrics)
    on = " on photos from other sources" if evaluation_set.is_external else ""
    for key, label in GATED_METRICS:
        drop = None if new[key] is None or old[key] is None else old[key] - new[key]
        passed = drop is not None and drop <= margin
        gate["checks"].append(
            {
                "set": evaluation_set.sha256,
                "set_kind": evaluation_set.kind,
                "metric": key,
                "label": label,
                "candidate": new[key],
                "active": old[key],
                "drop": drop,
                "passed": passed,
            }
        )
        if not passed:
            reasons.append(
                f"{label}{on} would fall from {_pct(old[key])} to {_pct(new[key])}, "
                f"more than the allowed {margin * 100:.1f} points."
            )


def _pct(value) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def comparison(candidate: ModelVersion) -> dict:
    """The candidate beside the active model on every judging set, and the promotion gate."""
    active = model_version_get_active()
    if active is not None and active.pk == candidate.pk:
        active = None
    return {
        "active": active,
        "sets": [_set_comparison(candidate, active, s) for s in judging_sets()],
        "gate": promotion_gate(candidate),
    }


def _set_comparison(candidate: ModelVersion, active, evaluation_set: EvaluationSet) -> dict:
    """Both models on one set: headline rows, class by class, confusion matrices, referral."""
    mine = evaluation_get(candidate, evaluation_set)
    theirs = evaluation_get(active, evaluation_set) if active else None
    per_class = []
    for code in CLASSES:
        row = {"code": code, "name": CLASS_NAMES[code]}
        for side, evaluation in (("candidate", mine), ("active", theirs)):
            stats = (evaluation.metrics.get("per_class") or {}).get(code) if evaluation else None
            row[side] = stats
            if stats and "support" not in row:
                row["support"] = stats.get("support")
        per_class.append(row)
    mine_summary, theirs_summary = _summary(mine), _summary(theirs)
    rows = []
    for key, label, higher_is_better in SUMMARY_ROWS:
        new = mine_summary.get(key) if mine_summary else None
        old = theirs_summary.get(key) if theirs_summary else None
        better = None
        if isinstance(new, float) and isinstance(old, float) and new != old:
            better = "candidate" if (new > old) == higher_is_better else "active"
        rows.append({"label": label, "candidate": new, "active": old, "better": better})
    matrices = [
        {
            "title": f"{side_version.name} ({side})",
            "rows": list(zip(CLASSES, evaluation.metrics["confusion_matrix"], strict=True)),
        }
        for side, side_version, evaluation in (
            ("candidate", candidate, mine),
            ("active", active, theirs),
        )
        if evaluation is not None
    ]
    return {
        "evaluation_set": evaluation_set,
        "candidate": {"version": candidate, "evaluation": mine, "summary": mine_summary},
        "active": {"version": active, "evaluation": theirs, "summary": theirs_summary},
        "summary_rows": rows,
        "per_class": per_class,
        "matrices": matrices,
        "classes": CLASSES,
        "referral": (mine.metrics.get("referral") if mine else None),
        "tradeoff": tradeoff_chart(mine.metrics) if mine else None,
        "subgroups": (mine.metrics.get("subgroups") if mine else None),
    }


def _summary(evaluation: ModelEvaluation | None) -> dict | None:
    return metric_summary(evaluation.metrics) if evaluation else None
