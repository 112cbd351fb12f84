import uuid

from django.conf import settings
from django.db import models


class Lesion(models.Model):
    """One spot on one patient, photographed over time."""

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lesions"
    )
    body_site = models.CharField(max_length=64, blank=True)
    label = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label or f"Lesion {self.pk}"


class CaseStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Classifying"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


TERMINAL_STATUSES = frozenset({CaseStatus.DONE, CaseStatus.FAILED, CaseStatus.REJECTED})

# Status only moves forward. RUNNING → RUNNING is a redelivered job whose worker died mid-run.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.QUEUED: frozenset({CaseStatus.RUNNING, CaseStatus.FAILED, CaseStatus.REJECTED}),
    CaseStatus.RUNNING: frozenset(
        {CaseStatus.RUNNING, CaseStatus.DONE, CaseStatus.FAILED, CaseStatus.REJECTED}
    ),
    CaseStatus.DONE: frozenset(),
    CaseStatus.FAILED: frozenset(),
    CaseStatus.REJECTED: frozenset(),
}


class Case(models.Model):
    """One photo submitted for classification, and its job state."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    lesion = models.ForeignKey(Lesion, on_delete=models.PROTECT, related_name="cases")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploaded_cases"
    )
    image_key = models.CharField(max_length=255, unique=True)
    image_content_type = models.CharField(max_length=32)
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    source_url = models.URLField(max_length=2048, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=128, blank=True)
    status = models.CharField(
        max_length=16, choices=CaseStatus.choices, default=CaseStatus.QUEUED, db_index=True
    )
    status_reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["uploaded_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_idempotency_key_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"Case {self.public_id} ({self.status})"

    @property
    def patient(self):
        return self.lesion.patient


class Prediction(models.Model):
    """The classifier's answer for one case. At most one per case: a redelivered job cannot add a second."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="prediction")
    model_version = models.ForeignKey(
        "modelops.ModelVersion", on_delete=models.PROTECT, related_name="predictions"
    )
    probabilities = models.JSONField()
    top_class = models.CharField(max_length=16)
    top_probability = models.FloatField()
    latency_ms = models.PositiveIntegerField()
    result_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.top_class} ({self.top_probability:.2f}) for case {self.case_id}"
