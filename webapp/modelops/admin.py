"""Django admin views of the registry: read-only. Training, promotion and rollback live on the model
operations pages (`/modelops/`), which record who did what and why."""

from django.contrib import admin

from webapp.modelops.models import (
    Dataset,
    DatasetSnapshot,
    EvaluationSet,
    ModelEvaluation,
    ModelEvent,
    ModelVersion,
    TrainingRun,
)
from webapp.records import ReadOnlyAdmin


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("name", "architecture", "status", "created_at", "activated_at")
    list_filter = ("status", "architecture")


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "status", "requested_by", "dataset", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(ModelEvent)
class ModelEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "version", "previous", "actor")


@admin.register(ModelEvaluation)
class ModelEvaluationAdmin(ReadOnlyAdmin):
    list_display = ("model_version", "evaluation_set", "created_at")


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "location_kind", "location", "created_at")


@admin.register(EvaluationSet)
class EvaluationSetAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "dataset", "image_count", "created_at")


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "dataset", "image_count", "created_at")
