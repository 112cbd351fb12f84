from django.contrib import admin

from webapp.audit.models import AuditEvent
from webapp.records import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only (the audit page at /audit/ exports it)."""

    list_display = ("at", "actor_username", "action", "object_type", "object_id", "outcome", "ip")
    list_filter = ("outcome", "action", "object_type")
    search_fields = ("actor_username", "object_id")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
