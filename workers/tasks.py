"""Thin Celery tasks: take an id, call a service, return. Time limits and retries live here."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from webapp.cases.models import CaseStatus
from webapp.cases.services import case_mark_finished_without_result
from webapp.cases.storage import StorageUnavailable
from webapp.config.celery import CLASSIFY_TASK, app
from workers.inference import WAITING_FOR_MODEL, classify_case
from workers.model_cache import ModelUnavailable

logger = logging.getLogger(__name__)

# Faults that go away by themselves: back off and try again.
TRANSIENT = (StorageUnavailable, OperationalError, InterfaceError, ModelUnavailable)


@app.task(
    name=CLASSIFY_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CLASSIFY_SOFT_TIME_LIMIT,
    time_limit=settings.CLASSIFY_TIME_LIMIT,
    max_retries=settings.CLASSIFY_MAX_RETRIES,
)
def classify(self, case_id: int) -> str:
    try:
        return classify_case(case_id=case_id)
    except (*TRANSIENT, SoftTimeLimitExceeded) as exc:
        if self.request.retries >= self.max_retries:
            if isinstance(exc, ModelUnavailable):
                # The model, not the photo, is at fault: the case stays queued, never run by
                # another model; a good bundle's activation or `requeue_waiting` hands it out again.
                logger.error("case %s waits: the active model is unusable: %s", case_id, exc)
                return WAITING_FOR_MODEL
            logger.error("case %s failed after %s retries: %s", case_id, self.request.retries, exc)
            case_mark_finished_without_result(
                case_id=case_id,
                status=CaseStatus.FAILED,
                reason="The classification service was unavailable for too long; "
                "please upload the photo again or contact your clinician.",
            )
            return "failed"
        countdown = min(5 * 2**self.request.retries, 300)
        logger.warning("case %s: %s; retrying in %ss", case_id, type(exc).__name__, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
