"""Re-runs: an admin classifies chosen past cases again with a chosen model version, beside (never
instead of) their own predictions."""

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.answer import Answer
from webapp.accounts.models import User
from webapp.cases.models import Case, CaseStatus
from webapp.config.celery import RERUN_TASK, enqueue_quietly, resend_missing
from webapp.modelops.models import ModelVersion
from webapp.modelops.services.common import ModelOpsError, require_admin
from webapp.reruns.models import Rerun, RerunResult, RerunStatus

# A re-run is for judging a version on chosen cases, not for re-labelling the archive in one go.
RERUN_MAX_CASES = 500


def rerun_create(
    *,
    version: ModelVersion,
    requested_by: User,
    case_ids: list[str] | None = None,
    recent: int | None = None,
    reason: str = "",
) -> Rerun:
    """Classify chosen past cases (by id, or the most recent classified ones) again with ``version``."""
    require_admin(requested_by)
    if case_ids:
        wanted = list(dict.fromkeys(str(c).strip() for c in case_ids if str(c).strip()))
        found = {str(c.public_id): c for c in Case.objects.filter(public_id__in=_uuids(wanted))}
        unknown = [c for c in wanted if c not in found]
        if unknown:
            raise ModelOpsError(f"No such case: {', '.join(unknown[:5])}.")
        cases = [found[c] for c in wanted]
    elif recent:
        cases = list(Case.objects.filter(status=CaseStatus.DONE).order_by("-finished_at")[:recent])
    else:
        raise ModelOpsError("Choose the cases to re-run: their ids, or how many recent ones.")
    if not cases:
        raise ModelOpsError("There are no classified cases to re-run yet.")
    if len(cases) > RERUN_MAX_CASES:
        raise ModelOpsError(
            f"At most {RERUN_MAX_CASES} cases per re-run; {len(cases)} were chosen."
        )
    rejected = [str(c.public_id) for c in cases if c.status == CaseStatus.REJECTED]
    if rejected:
        raise ModelOpsError(f"These photos were rejected as unreadable: {', '.join(rejected[:5])}.")
    with transaction.atomic():
        rerun = Rerun.objects.create(
            model_version=version, requested_by=requested_by, reason=reason
        )
        results = RerunResult.objects.bulk_create(RerunResult(rerun=rerun, case=c) for c in cases)
        ids = [r.pk for r in results]
        transaction.on_commit(lambda: [rerun_enqueue(pk) for pk in ids])
    return rerun


def _uuids(values: list[str]) -> list[uuid.UUID]:
    parsed = []
    for value in values:
        try:
            parsed.append(uuid.UUID(value))
        except ValueError:
            raise ModelOpsError(f"{value!r} is not a case id.") from None
    return parsed


def rerun_enqueue(result_id: int) -> bool:
    # Its row stays queued when the broker is down; the reconciler sends it later.
    return enqueue_quietly(RERUN_TASK, result_id)


def reruns_requeue_stuck(*, in_broker: set[int]) -> int:
    """The reconciler's pass over re-runs: send again the queued answers whose job the broker
    no longer holds, `CASE_REQUEUE_AFTER` seconds after the re-run was asked for."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.CASE_REQUEUE_AFTER)
    ids = RerunResult.objects.filter(
        status=RerunStatus.QUEUED, rerun__created_at__lte=cutoff
    ).values_list("pk", flat=True)
    return resend_missing(ids, in_broker, rerun_enqueue)


def rerun_claim(*, result_id: int) -> RerunResult | None:
    """The queued result to compute, or None when it is done already (a redelivered job)."""
    return (
        RerunResult.objects.select_related("rerun__model_version", "case")
        .filter(pk=result_id, status=RerunStatus.QUEUED)
        .first()
    )


def rerun_record(
    *, result_id: int, answer: Answer | None = None, result_key: str = "", error: str = ""
) -> None:
    """A re-run's answer for one case (stored at ``result_key``), or why it has none."""
    fields = {"finished_at": timezone.now()}
    if error:
        fields.update(status=RerunStatus.FAILED, error=error[:500])
    else:
        fields.update(status=RerunStatus.DONE, **RerunResult.answered(answer, result_key))
    RerunResult.objects.filter(pk=result_id, status=RerunStatus.QUEUED).update(**fields)
