"""Writes for heat maps: one per new prediction, made by a follow-up job on the "explain" queue after the
result has gone out, recorded done or failed with a reason; a clinician may ask again for a missing one."""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.heatmaps import WHOLE_PHOTO
from webapp.accounts.models import User
from webapp.cases.models import Case, CaseStatus, HeatMap, HeatMapStatus, Prediction
from webapp.cases.publishing import cases_publish
from webapp.config.celery import EXPLAIN_TASK, enqueue_quietly, resend_missing
from webapp.errors import ApplicationError, Conflict, NotPermitted

logger = logging.getLogger(__name__)

ERROR_MAX = 500


def explain_enqueue(heatmap_id: int) -> bool:
    return enqueue_quietly(EXPLAIN_TASK, heatmap_id)


def _enqueue_after_commit(heatmaps: list[HeatMap]) -> None:
    ids = [heatmap.pk for heatmap in heatmaps]
    transaction.on_commit(lambda: [explain_enqueue(pk) for pk in ids])


def heatmaps_create(predictions: list[Prediction]) -> None:
    """Inside the transaction that records ``predictions``: a queued heat map for each, sent to the
    explain queue once that transaction commits."""
    if not settings.HEATMAPS or not predictions:
        return
    created = HeatMap.objects.bulk_create(
        HeatMap(prediction_id=prediction.pk, target_class=prediction.top_class)
        for prediction in predictions
    )
    _enqueue_after_commit(created)


def heatmaps_requeue_stuck(*, in_broker: set[int]) -> int:
    """The reconciler's pass over heat maps: send again those queued for `CASE_REQUEUE_AFTER` seconds
    whose job the broker no longer holds."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.CASE_REQUEUE_AFTER)
    ids = HeatMap.objects.filter(status=HeatMapStatus.QUEUED, created_at__lte=cutoff).values_list(
        "pk", flat=True
    )
    return resend_missing(ids, in_broker, explain_enqueue)


def heatmap_request(*, case: Case, by: User) -> HeatMap:
    """A clinician or admin asks for the heat map of a classified case that has none, or whose last
    attempt failed (a model that cannot be explained will fail again, with the same reason)."""
    if not (by.is_clinician or by.is_admin_role):
        raise NotPermitted("Only clinicians and administrators ask for heat maps.")
    if case.status != CaseStatus.DONE:
        raise ApplicationError("This photo has no result yet, so there is nothing to explain.")
    with transaction.atomic():
        prediction = Prediction.objects.select_for_update().get(case=case)
        heatmap = HeatMap.objects.filter(prediction=prediction).first()
        if heatmap is not None and heatmap.status != HeatMapStatus.FAILED:
            raise Conflict(f"The heat map is already {heatmap.get_status_display().lower()}.")
        if heatmap is None:
            heatmap = HeatMap.objects.create(
                prediction=prediction, target_class=prediction.top_class
            )
        else:
            HeatMap.objects.filter(pk=heatmap.pk).update(
                status=HeatMapStatus.QUEUED, error="", attempts=0, finished_at=None
            )
            heatmap.refresh_from_db()
        _enqueue_after_commit([heatmap])
        transaction.on_commit(lambda: cases_publish(public_ids=[case.public_id]))
    return heatmap


def heatmap_claim(*, heatmap_id: int) -> HeatMap | None:
    """The queued heat map to make, its attempt counted; None when it is finished or gone (a
    redelivered job)."""
    with transaction.atomic():
        heatmap = (
            HeatMap.objects.select_for_update()
            .filter(pk=heatmap_id, status=HeatMapStatus.QUEUED)
            .first()
        )
        if heatmap is None:
            return None
        heatmap.attempts += 1
        heatmap.save(update_fields=["attempts"])
    return HeatMap.objects.select_related("prediction__case", "prediction__model_version").get(
        pk=heatmap_id
    )


def _finish(heatmap_id: int, **fields) -> bool:
    with transaction.atomic():
        updated = HeatMap.objects.filter(pk=heatmap_id, status=HeatMapStatus.QUEUED).update(
            finished_at=timezone.now(), **fields
        )
        public_id = (
            HeatMap.objects.filter(pk=heatmap_id).values_list(
                "prediction__case__public_id", flat=True
            )
        ).first()
        if updated and public_id is not None:
            transaction.on_commit(lambda: cases_publish(public_ids=[public_id]))
    return bool(updated)


def heatmap_record(
    *,
    heatmap_id: int,
    layer: str,
    grid: list[list[float]],
    image_key: str,
    region: Sequence[float] = WHOLE_PHOTO,
) -> bool:
    """Record a made heat map; False when it was finished meanwhile or its case was deleted."""
    return _finish(
        heatmap_id,
        status=HeatMapStatus.DONE,
        layer=layer,
        grid=grid,
        image_key=image_key,
        region=list(region),
    )


def heatmap_fail(*, heatmap_id: int, error: str) -> bool:
    logger.warning("heat map %s failed: %s", heatmap_id, error)
    return _finish(heatmap_id, status=HeatMapStatus.FAILED, error=error[:ERROR_MAX])
