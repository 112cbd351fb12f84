"""Reads for guidance: the approved version per diagnosis, a diagnosis's history, drafts to review."""

from django.db.models import QuerySet
from django.http import Http404

from webapp.guidance.models import GuidanceStatus, GuidanceVersion


def guidance_current_all() -> dict[str, GuidanceVersion]:
    """The approved version of each diagnosis that has one, by dx code."""
    approved = GuidanceVersion.objects.filter(status=GuidanceStatus.APPROVED)
    return {version.dx: version for version in approved.select_related("reviewed_by")}


def guidance_history(dx: str) -> QuerySet[GuidanceVersion]:
    return GuidanceVersion.objects.filter(dx=dx).select_related("written_by", "reviewed_by")


def guidance_drafts() -> QuerySet[GuidanceVersion]:
    return GuidanceVersion.objects.filter(status=GuidanceStatus.DRAFT).select_related("written_by")


def guidance_get(*, pk: int) -> GuidanceVersion:
    version = GuidanceVersion.objects.select_related("written_by").filter(pk=pk).first()
    if version is None:
        raise Http404("No such guidance version.")
    return version
