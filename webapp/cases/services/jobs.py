"""A case's classification job: enqueueing, claiming, releasing, finishing without a result, and
the status transitions they make (``ALLOWED_TRANSITIONS``)."""

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.cases.models import ALLOWED_TRANSITIONS, TERMINAL_STATUSES, Case, CaseStatus
from webapp.cases.publishing import cases_publish
from webapp.config.celery import CLASSIFY_TASK, enqueue_quietly, resend_missing
from webapp.modelops.selectors import any_model_active


class InvalidTransition(RuntimeError):
    pass


def classify_enqueue(case_id: int) -> bool:
    """Send the case's job; False when the broker cannot take it. After a commit that is not the caller's
    failure: the case stays queued and the reconciler (`cases.reconcile`) sends it once the broker is back,
    so an upload is never answered with an error after its case was saved."""
    # By id only: the task re-reads the row, so no ORM object or image ever travels through the broker.
    return enqueue_quietly(CLASSIFY_TASK, case_id)


def case_enqueue_waiting(*, older_than_seconds: int = 0) -> int:
    """Enqueue every case still queued (after a model is activated, or by the reconciler)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    ids = list(
        Case.objects.filter(status=CaseStatus.QUEUED, created_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )
    for case_id in ids:
        classify_enqueue(case_id)
    return len(ids)


def cases_requeue_stuck(*, in_broker: set[int]) -> dict[str, int]:
    """The reconciler's pass over cases: send again every case whose job the broker no longer holds
    (lost with a restarted Redis, or never sent while it was down): queued for `CASE_REQUEUE_AFTER`
    seconds, or running past its hard time limit plus that delay (its worker died with the message).
    Queued cases wait without a message while no model is active; activation sends them."""
    now = timezone.now()
    after = timezone.timedelta(seconds=settings.CASE_REQUEUE_AFTER)
    stuck = {"queued": [], "running": []}
    if any_model_active():
        stuck["queued"] = Case.objects.filter(
            status=CaseStatus.QUEUED, created_at__lte=now - after
        ).values_list("pk", flat=True)
    stuck["running"] = Case.objects.filter(
        status=CaseStatus.RUNNING,
        started_at__lte=now - after - timezone.timedelta(seconds=settings.CLASSIFY_TIME_LIMIT),
    ).values_list("pk", flat=True)
    return {state: resend_missing(ids, in_broker, classify_enqueue) for state, ids in stuck.items()}


def case_claim_for_classification(*, case_id: int) -> Case | None:
    """Move a queued (or redelivered running) case to running. None when it is finished or gone."""
    return cases_claim_for_classification(case_ids=[case_id]).get(case_id)


def cases_claim_for_classification(*, case_ids: list[int]) -> dict[int, Case]:
    """`case_claim_for_classification` for a batch, in two queries whatever its size: the cases
    claimed, by id; a finished or missing case is not among them."""
    Case.objects.filter(pk__in=case_ids, status__in=[CaseStatus.QUEUED, CaseStatus.RUNNING]).update(
        status=CaseStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    # Running now means claimed here: nothing else moves a case back to running.
    running = Case.objects.select_related("lesion").filter(
        pk__in=case_ids, status=CaseStatus.RUNNING
    )
    return {case.pk: case for case in running}


def case_release_claim(*, case_id: int) -> None:
    """A claim that ended without an answer (a transient fault; the job is retried): the case waits
    again, and the claim does not count. ``attempts`` then counts only claims that never ended,
    those whose worker died, which is what stops a photo that kills its worker."""
    Case.objects.filter(pk=case_id, status=CaseStatus.RUNNING, attempts__gt=0).update(
        status=CaseStatus.QUEUED, attempts=F("attempts") - 1
    )


def _transition(case: Case, new_status: str, reason: str = "") -> None:
    if new_status not in ALLOWED_TRANSITIONS[case.status]:
        raise InvalidTransition(f"Case {case.pk} cannot go from {case.status} to {new_status}.")
    case.status = new_status
    case.status_reason = reason[:500]
    if new_status in TERMINAL_STATUSES:
        case.finished_at = timezone.now()
    case.save(update_fields=["status", "status_reason", "finished_at"])


def case_mark_finished_without_result(*, case_id: int, status: str, reason: str) -> Case | None:
    """Fail or reject a case with a reason the user can read. No-op when it is already finished."""
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.status in TERMINAL_STATUSES:
            return case
        _transition(case, status, reason)
        transaction.on_commit(lambda: cases_publish(public_ids=[case.public_id]))
    return case
