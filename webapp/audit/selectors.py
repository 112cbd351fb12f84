from django.db.models import QuerySet

from webapp.audit.models import AuditEvent


def audit_events(
    *, actor="", object_id="", action="", outcome="", since=None, until=None
) -> QuerySet[AuditEvent]:
    """The audit trail, newest first, narrowed by each filter that is given."""
    events = AuditEvent.objects.all()
    if actor:
        events = events.filter(actor_username__iexact=actor.strip())
    if object_id:
        events = events.filter(object_id=object_id.strip())
    if action:
        events = events.filter(action=action.strip())
    if outcome:
        events = events.filter(outcome=outcome)
    if since:
        events = events.filter(at__date__gte=since)
    if until:
        events = events.filter(at__date__lte=until)
    return events
