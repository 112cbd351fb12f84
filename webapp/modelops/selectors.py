"""Reads for models and training runs. Pages, the REST API and live pushes all send these dicts."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse

from webapp.modelops.models import (
    Dataset,
    ModelEvent,
    ModelImport,
    ModelStatus,
    ModelVersion,
    RunStatus,
    TrainingRun,
)


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()


def any_model_active() -> bool:
    """Whether uploads are classified now or wait for a model (reads no version's row)."""
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists()


def model_versions_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("parent", "created_by", "training_run")


def model_version_get(*, name: str) -> ModelVersion:
    version = model_versions_list().filter(name=name).first()
    if version is None:
        raise Http404("No such model version.")
    return version


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


def training_run_group_name(public_id) -> str:
    """The channel-layer group of the sockets watching one training run."""
    return f"training-run-{public_id}"


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
