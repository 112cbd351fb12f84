import uuid

from django.conf import settings
from django.db import models

from ml.answer import Answer
from ml.classes import CLASS_CHOICES
from webapp.records import WriteOnceModel


class Lesion(models.Model):
    """One spot on one patient, photographed over time: each upload is a visit (a Case)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lesions"
    )
    body_site = models.CharField(max_length=64, blank=True)
    label = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label or self.body_site or f"Lesion of {self.created_at:%d %b %Y}"


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


class Decision(models.TextChoices):
    REFER = "refer", "Refer to a clinician"
    ROUTINE = "routine", "No referral needed"


class ClassifierOutput(models.Model):
    """The fields a model's answer fills: shared by a case's prediction and a re-run's result.

    Blank until answered (a re-run's result waits for its job); a prediction is made answered,
    which its check constraint holds it to.
    """

    probabilities = models.JSONField(null=True, blank=True)
    top_class = models.CharField(max_length=16, blank=True)
    top_probability = models.FloatField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # What computed it: "onnxruntime-cpu", "onnxruntime-cuda" or "keras-compiled" (the fallback).
    engine = models.CharField(max_length=32, blank=True)
    result_key = models.CharField(max_length=255, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def answered(answer: Answer, result_key: str) -> dict:
        """The field values of ``answer``, whose result object is stored at ``result_key``."""
        return {
            "probabilities": answer.probabilities,
            "top_class": answer.top_class,
            "top_probability": answer.top_probability,
            "latency_ms": answer.latency_ms,
            "engine": answer.engine,
            "result_key": result_key,
        }

    @property
    def most_probable_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def names_most_probable(self) -> bool:
        """False when the version's top-class rule named a rarer class than the most probable."""
        return self.top_class == self.most_probable_class


class Prediction(ClassifierOutput):
    """The classifier's answer for one case. At most one per case: a redelivered job cannot add a second."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="prediction")
    model_version = models.ForeignKey(
        "modelops.ModelVersion", on_delete=models.PROTECT, related_name="predictions"
    )
    # The referral decision from the model version's rule (ml.referral); blank on predictions
    # made before decisions were recorded.
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    decision_reasons = models.JSONField(default=list, blank=True)
    malignant_probability = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(probabilities__isnull=False)
                & models.Q(top_probability__isnull=False)
                & models.Q(latency_ms__isnull=False)
                & ~models.Q(top_class="")
                & ~models.Q(result_key=""),
                name="prediction_is_answered",
            )
        ]

    def __str__(self) -> str:
        return f"{self.top_class} ({self.top_probability:.2f}) for case {self.case_id}"


class Review(WriteOnceModel):
    """A clinician's diagnosis of a case. Reviews are kept: a correction is a new row, never an edit, and
    the newest review is the case's label for retraining."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    diagnosis = models.CharField(max_length=16, choices=CLASS_CHOICES)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.diagnosis} for case {self.case_id} by {self.reviewer}"


class HeatMapStatus(models.TextChoices):
    QUEUED = "queued", "Being made"
    DONE = "done", "Ready"
    FAILED = "failed", "Could not be made"


class HeatMap(models.Model):
    """A Grad-CAM heat map of a prediction: made after the result is out, by a follow-up job with the
    prediction's own model version, for the class it chose; stored as a transparent overlay in S3."""

    prediction = models.OneToOneField(Prediction, on_delete=models.CASCADE, related_name="heatmap")
    status = models.CharField(
        max_length=16, choices=HeatMapStatus.choices, default=HeatMapStatus.QUEUED
    )
    target_class = models.CharField(max_length=16, choices=CLASS_CHOICES)
    # The feature map it was read from, and the map itself (rows of 0..1, peak 1) for clients that
    # draw their own.
    layer = models.CharField(max_length=128, blank=True)
    grid = models.JSONField(null=True, blank=True)
    # The part of the photo the grid covers, [left, top, right, bottom] as fractions of its width
    # and height: the whole photo, or the centred square a centre-cropping model saw.
    region = models.JSONField(default=list, blank=True)
    image_key = models.CharField(max_length=255, blank=True)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"heat map of {self.target_class} for case {self.prediction.case_id} ({self.status})"
