"""A clinician's diagnosis of a case: a new row each time, never an edit."""

from ml.classes import CLASSES
from webapp.accounts.models import User
from webapp.cases.models import Case, CaseStatus, Review
from webapp.cases.selectors import case_visible_to
from webapp.errors import ApplicationError, NotPermitted

REVIEW_NOTES_MAX = 4000


def review_create(*, case: Case, reviewer: User, diagnosis: str, notes: str = "") -> Review:
    """Record a clinician's diagnosis of a case they may see; earlier reviews stay as they were."""
    if not (reviewer.is_clinician or reviewer.is_admin_role):
        raise NotPermitted("Only clinicians and administrators review cases.")
    if not case_visible_to(reviewer).filter(pk=case.pk).exists():
        raise NotPermitted("You may review only the cases of patients assigned to you.")
    if diagnosis not in CLASSES:
        raise ApplicationError(
            f"Unknown diagnosis {diagnosis!r}; choose one of {', '.join(CLASSES)}.",
            field="diagnosis",
        )
    if case.status == CaseStatus.REJECTED:
        raise ApplicationError(
            "This photo was rejected as unreadable; it cannot carry a diagnosis."
        )
    return Review.objects.create(
        case=case, reviewer=reviewer, diagnosis=diagnosis, notes=notes[:REVIEW_NOTES_MAX]
    )
