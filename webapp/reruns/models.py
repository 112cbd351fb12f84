import uuid

from django.conf import settings
from django.db import models

from webapp.cases.models import ClassifierOutput


class Rerun(models.Model):
    """An admin's request to classify chosen past cases again with a chosen model version, to see how
    it would have answered. The cases' own results are never touched."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model_version = models.ForeignKey(
        "modelops.ModelVersion", on_delete=models.PROTECT, related_name="reruns"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reruns"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "cases_rerun"  # made in the cases app, before re-runs had their own
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"re-run with {self.model_version_id} ({self.created_at:%Y-%m-%d})"


class RerunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RerunResult(ClassifierOutput):
    """One case's answer in a re-run, beside (never instead of) its own prediction."""

    rerun = models.ForeignKey(Rerun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="rerun_results")
    status = models.CharField(
        max_length=16, choices=RerunStatus.choices, default=RerunStatus.QUEUED
    )
    error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "cases_rerunresult"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rerun", "case"], name="one_result_per_case_per_rerun")
        ]

    def __str__(self) -> str:
        return f"re-run result for case {self.case_id} ({self.status})"
