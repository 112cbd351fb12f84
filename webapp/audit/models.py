from django.conf import settings
from django.db import models

from webapp.records import ImmutableRecord, WriteOnceModel


class Outcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"


class AuditEvent(WriteOnceModel):
    """One access to patient data, or one refused attempt. Append-only: never edited, never deleted."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The username is kept as text too, so the record outlives the account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=32)
    route = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, db_index=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username or 'anonymous'} {self.action} {self.object_type} {self.object_id} {self.outcome}"

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("Audit events are never deleted.")
