"""Writing the audit trail: one row per access to patient data and per refused attempt."""

import logging

from webapp.audit.models import AuditEvent, Outcome

logger = logging.getLogger(__name__)


def audit_record(
    *,
    user,
    action: str,
    route: str,
    object_type: str,
    object_id: str = "",
    allowed: bool,
    status_code: int | None = None,
    ip: str | None = None,
) -> AuditEvent | None:
    """Append one event. A failure to write is logged as an error, never raised into the response."""
    known = user is not None and getattr(user, "is_authenticated", False)
    try:
        return AuditEvent.objects.create(
            actor=user if known else None,
            actor_username=user.get_username() if known else "",
            action=action,
            route=route,
            object_type=object_type,
            object_id=str(object_id)[:64],
            outcome=Outcome.ALLOWED if allowed else Outcome.DENIED,
            status_code=status_code,
            ip=ip or None,
        )
    except Exception:
        logger.exception(
            "could not write the audit event for %s %s %s", action, object_type, object_id
        )
        return None
