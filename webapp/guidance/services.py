"""Writes for guidance: a clinician proposes a new version, a second clinician approves or rejects it."""

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from ml.classes import CLASSES
from webapp.accounts.models import User
from webapp.errors import ApplicationError, Conflict, NotPermitted
from webapp.guidance.models import GuidanceStatus, GuidanceVersion

TEXT_FIELDS = ("what_it_is", "first_line", "see_a_doctor", "sources")
TEXT_MAX = 4000


def _require_clinician(user: User) -> None:
    if not (user.is_authenticated and user.is_active and (user.is_clinician or user.is_admin_role)):
        raise NotPermitted("Only clinicians and administrators write or approve guidance.")


def guidance_propose(*, author: User, dx: str, **texts: str) -> GuidanceVersion:
    """A new draft version of the guidance for ``dx``; shown only once a second clinician approves it."""
    _require_clinician(author)
    if dx not in CLASSES:
        raise ApplicationError(f"Unknown diagnosis {dx!r}; choose one of {', '.join(CLASSES)}.")
    cleaned = {name: (texts.get(name) or "").strip() for name in TEXT_FIELDS}
    missing = [name.replace("_", " ") for name, text in cleaned.items() if not text]
    if missing:
        raise ApplicationError(f"Fill in: {', '.join(missing)}.", fields=missing)
    too_long = [name for name, text in cleaned.items() if len(text) > TEXT_MAX]
    if too_long:
        raise ApplicationError(
            f"Keep each part under {TEXT_MAX} characters ({', '.join(too_long)})."
        )
    try:
        with transaction.atomic():
            latest = GuidanceVersion.objects.filter(dx=dx).aggregate(n=Max("version"))["n"] or 0
            return GuidanceVersion.objects.create(
                dx=dx, version=latest + 1, written_by=author, **cleaned
            )
    except IntegrityError as exc:
        raise Conflict("Someone proposed a version at the same moment; try again.") from exc


def guidance_review(
    *, reviewer: User, version: GuidanceVersion, approve: bool, note: str = ""
) -> GuidanceVersion:
    """Approve a draft (it replaces the approved version of its diagnosis) or reject it."""
    _require_clinician(reviewer)
    if version.written_by_id == reviewer.pk:
        raise NotPermitted("A second clinician approves guidance: not its author.")
    with transaction.atomic():
        version = GuidanceVersion.objects.select_for_update().get(pk=version.pk)
        if version.status != GuidanceStatus.DRAFT:
            raise Conflict(
                f"Version {version.version} was already {version.get_status_display().lower()}."
            )
        now = timezone.now()
        if approve:
            for current in GuidanceVersion.objects.select_for_update().filter(
                dx=version.dx, status=GuidanceStatus.APPROVED
            ):
                current.status = GuidanceStatus.SUPERSEDED
                current.save(update_fields=["status"])
        version.status = GuidanceStatus.APPROVED if approve else GuidanceStatus.REJECTED
        version.reviewed_by, version.reviewed_at, version.review_note = (
            reviewer,
            now,
            note[:TEXT_MAX],
        )
        version.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
    return version
