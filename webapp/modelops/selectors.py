"""Reads for models and training runs. Pages, the REST API and live pushes all send these dicts."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse

from ml.classes import CLASS_NAMES, CLASSES
from ml.referral import ReferralRule, ReferralRuleError
from webapp.modelops.charts import tradeoff_chart
from webapp.modelops.models import (
    Dataset,
    EvaluationSet,
    EvaluationSetKind,
    ModelEvaluation,
    ModelEvent,
    ModelImport,
    ModelStatus,
    ModelVersion,
    RunStatus,
    TrainingRun,
)

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


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()


def model_versions_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("parent", "created_by", "training_run")


def model_version_get(*, name: str) -> ModelVersion:
    version = model_versions_list().filter(name=name).first()
    if version is None:
        raise Http404("No such model version.")
    return version


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


def model_events_list() -> QuerySet[ModelEvent]:
    return ModelEvent.objects.select_related("version", "previous", "actor")


def model_imports_list() -> QuerySet[ModelImport]:
    return ModelImport.objects.select_related("requested_by", "model_version")


def model_import_get(*, public_id) -> ModelImport:
    record = model_imports_list().filter(public_id=public_id).first()
    if record is None:
        raise Http404("No such import.")
    return record


def model_import_state(record: ModelImport) -> dict:
    return {
        "id": str(record.public_id),
        "kind": record.kind,
        "status": record.status,
        "status_label": record.get_status_display(),
        "reason": record.status_reason,
        "architecture": record.architecture,
        "model_version": record.model_version.name if record.model_version else None,
        "created_at": _iso(record.created_at),
        "finished_at": _iso(record.finished_at),
    }


def datasets_list() -> QuerySet[Dataset]:
    return Dataset.objects.all()


def training_runs_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "requested_by", "dataset", "snapshot", "model_version"
    )


def training_run_get(*, public_id) -> TrainingRun:
    run = training_runs_list().filter(public_id=public_id).first()
    if run is None:
        raise Http404("No such training run.")
    return run


def training_run_group_name(run: TrainingRun) -> str:
    return f"training-run-{run.public_id}"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def training_run_state(run: TrainingRun) -> dict:
    """The one representation of a run: its page, the JSON view, the REST API and the push send it."""
    version = getattr(run, "model_version", None)
    snapshot = run.snapshot
    return {
        "id": str(run.public_id),
        "status": run.status,
        "status_label": RunStatus(run.status).label,
        "finished": run.is_finished,
        "reason": run.status_reason,
        "problems": run.problems,
        "requested_by": run.requested_by.username,
        "dataset": run.dataset.name,
        "include_confirmed_cases": run.include_confirmed_cases,
        "preset": run.preset,
        "options": run.options,
        "repeat_of": str(run.repeat_of.public_id) if run.repeat_of_id else None,
        "device": run.device,
        "worker": run.worker,
        "cancel_requested": run.cancel_requested_at is not None,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "heartbeat_at": _iso(run.heartbeat_at),
        "progress": run.progress,
        "snapshot": (
            {
                "sha256": snapshot.sha256,
                "image_count": snapshot.image_count,
                "class_counts": snapshot.class_counts,
                "evaluation_set": snapshot.evaluation_set.sha256,
            }
            if snapshot
            else None
        ),
        "model_version": version.name if version else None,
        "model_url": reverse("modelops:version", kwargs={"name": version.name})
        if version
        else None,
        "page_url": reverse("modelops:run", kwargs={"public_id": run.public_id}),
        "log_url": (
            reverse("modelops:run-artefact", kwargs={"public_id": run.public_id, "name": "log"})
            if "log" in run.artefacts
            else None
        ),
    }


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


def _external_card(version: ModelVersion) -> dict | None:
    """How the version did on photos from other sources: what a patient elsewhere can expect."""
    external_set = external_set_current()
    evaluation = evaluation_get(version, external_set)
    if evaluation is None:
        return {"evaluation_set": external_set, "summary": None} if external_set else None
    metrics = evaluation.metrics
    weak = [
        {"code": code, "name": CLASS_NAMES.get(code, code), "recall": stats["recall"]}
        for code, stats in (metrics.get("per_class") or {}).items()
        if stats.get("support") and stats["recall"] < WEAK_RECALL
    ]
    return {
        "evaluation_set": external_set,
        "summary": metric_summary(metrics),
        "referral": metrics.get("referral"),
        "tradeoff": tradeoff_chart(metrics),
        "weak_classes": weak,
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
    per_class = []
    weak = []
    for code in version.class_names:
        stats = (metrics or {}).get("per_class", {}).get(code)
        per_class.append({"code": code, "name": CLASS_NAMES.get(code, code), "stats": stats})
        if stats and stats.get("support") and stats["recall"] < WEAK_RECALL:
            weak.append(
                f"{CLASS_NAMES.get(code, code)} ({code}): it finds {stats['recall'] * 100:.0f}%"
            )
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
