"""Audits every request to a route that shows or changes patient data, whatever answered it.

The routes are listed here, in one place: a page, its JSON view, the API and the photo all count. A 2xx
answer is an access; 401, 403 and 404 are refused attempts (the same 404 that hides someone else's case
from its caller is recorded as what it was), as is an anonymous visitor sent to the login page. A page
that answers a refusal with a redirect and a message says so with `note_refusal`.
"""

import logging

from webapp.audit.services import audit_record
from webapp.outages import OUTAGES, outage_response

logger = logging.getLogger(__name__)

# "namespace:url name" -> (object type, action; POST makes it a write)
AUDITED_ROUTES: dict[str, tuple[str, str]] = {
    "cases:history": ("case-list", "read"),
    "cases:results": ("case", "read"),
    "cases:state": ("case", "read"),
    "cases:review": ("case", "review"),
    "cases:delete": ("case", "delete"),
    "cases:lesions": ("lesion-list", "read"),
    "cases:lesion": ("lesion", "read"),
    "cases:queue": ("review-queue", "read"),
    "cases:upload": ("case", "upload"),
    "api:case-list": ("case-list", "read"),
    "api:case-detail": ("case", "read"),
    "api:case-image": ("case", "download"),
    "api:case-heatmap": ("case", "download-heatmap"),
    "api:case-export": ("case", "export"),
    "api:case-fhir": ("case", "export"),
    "api:case-reviews": ("case", "read-reviews"),
    "api:lesion-list": ("lesion-list", "read"),
    "api:lesion-detail": ("lesion", "read"),
    "api:review-queue": ("review-queue", "read"),
}
# What a request that is not a GET does on a route whose GET reads.
WRITES = {
    ("api:case-list", "POST"): "upload",
    ("api:case-reviews", "POST"): "review",
    ("api:case-detail", "DELETE"): "delete",
    ("api:case-heatmap", "POST"): "request-heatmap",
}
# Django admin pages of these apps show patient data too.
ADMIN_APPS = ("admin:cases_",)
DENIED = {401, 403, 404}


def note_refusal(request, status: int) -> None:
    """For a page that answers a refused request with a redirect and a message: the trail records
    the refusal's own status (403 for someone not allowed), not the redirect's 302."""
    request.audit_refusal_status = status


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.view_name if match else None
        if route in AUDITED_ROUTES:
            if route == "cases:upload" and request.method != "POST":
                return response  # the empty form shows no patient data
            object_type, action = AUDITED_ROUTES[route]
            action = WRITES.get((route, request.method), action)
            object_id = match.kwargs.get("public_id", "")
        elif route and route.startswith(ADMIN_APPS):
            # e.g. admin:cases_case_change -> case, read (or write for a POST)
            object_type = route.split(":", 1)[1].removeprefix("cases_").rsplit("_", 1)[0]
            action = "admin-write" if request.method == "POST" else "admin-read"
            object_id = match.kwargs.get("object_id", "")
        else:
            return response
        user = getattr(request, "user", None)
        status = getattr(request, "audit_refusal_status", response.status_code)
        anonymous_sent_to_login = status == 302 and not (user is not None and user.is_authenticated)
        allowed = status not in DENIED and not anonymous_sent_to_login
        try:
            audit_record(
                user=user,
                action=action,
                route=route,
                object_type=object_type,
                object_id=str(object_id),
                allowed=allowed,
                status_code=status,
                ip=client_ip(request),
            )
        except OUTAGES:
            logger.exception(
                "audit row not written (%s %s by %s, status %s)",
                request.method,
                request.path,
                getattr(user, "pk", None),
                status,
            )
            # Patient data is not handed out unaudited; a write that happened is still reported.
            if request.method == "GET" and allowed:
                return outage_response(request)
        return response
