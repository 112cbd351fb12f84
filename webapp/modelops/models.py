from django.conf import settings
from django.db import models


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    """A registered model bundle in object storage. Bundles are immutable: a new model is a new row."""

    name = models.CharField(max_length=120, unique=True)
    architecture = models.CharField(max_length=64)
    bundle_key = models.CharField(max_length=255, unique=True)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the bundle zip in storage")
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE, db_index=True
    )
    manifest = models.JSONField()
    metrics = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one model answers patients at any time.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="single_active_model_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.get("class_names", []))
