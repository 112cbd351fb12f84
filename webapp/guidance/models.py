from django.conf import settings
from django.db import models

from ml.classes import CLASS_CHOICES
from webapp.records import WriteOnceModel


class GuidanceStatus(models.TextChoices):
    DRAFT = "draft", "Waiting for approval"
    APPROVED = "approved", "Approved (shown with results)"
    SUPERSEDED = "superseded", "Replaced by a newer version"
    REJECTED = "rejected", "Not approved"


class GuidanceVersion(WriteOnceModel):
    """What to tell people about one diagnosis. A version's text never changes: an edit is a new draft,
    approved by a second clinician; the approved version is shown with every result of that class."""

    MUTABLE_FIELDS = frozenset({"status", "reviewed_by", "reviewed_at", "review_note"})

    dx = models.CharField(max_length=16, choices=CLASS_CHOICES)
    version = models.PositiveIntegerField()
    what_it_is = models.TextField(help_text="What this usually is, in plain words")
    first_line = models.TextField(help_text="First-line options a clinician may consider")
    see_a_doctor = models.TextField(help_text="When to see a doctor, and when urgently")
    sources = models.TextField(help_text="One source per line (title and address)")
    status = models.CharField(
        max_length=16, choices=GuidanceStatus.choices, default=GuidanceStatus.DRAFT
    )
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="guidance_written",
        null=True,
        blank=True,
    )
    written_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="guidance_reviewed",
        null=True,
        blank=True,
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["dx", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dx", "version"], name="one_guidance_version_number"),
            models.UniqueConstraint(
                fields=["dx"],
                condition=models.Q(status="approved"),
                name="one_approved_guidance_per_class",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dx} v{self.version} ({self.status})"

    @property
    def source_lines(self) -> list[str]:
        return [line.strip() for line in self.sources.splitlines() if line.strip()]
