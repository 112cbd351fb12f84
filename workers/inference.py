"""Classify one case: the service the `cases.classify` task calls."""

import logging
import time

from django.conf import settings

from webapp.cases.models import CaseStatus
from webapp.cases.services import (
    case_claim_for_classification,
    case_mark_finished_without_result,
    case_record_prediction,
)
from webapp.modelops.selectors import model_version_get_active
from webapp.storage import store
from workers.model_cache import get_predictor

logger = logging.getLogger(__name__)

WAITING_FOR_MODEL = "waiting-for-model"
ALREADY_FINISHED = "already-finished"
DONE = "done"
REJECTED = "rejected"
FAILED = "failed"


def classify_case(*, case_id: int) -> str:
    version = model_version_get_active()
    if version is None:
        # The case stays queued; activating a model enqueues every waiting case.
        logger.info("case %s waits: no model is active", case_id)
        return WAITING_FOR_MODEL
    # Load before claiming, so a broken bundle leaves the case queued rather than half-run.
    predictor = get_predictor(version)

    case = case_claim_for_classification(case_id=case_id)
    if case is None:
        return ALREADY_FINISHED
    if case.attempts > settings.CLASSIFY_MAX_ATTEMPTS:
        case_mark_finished_without_result(
            case_id=case_id,
            status=CaseStatus.FAILED,
            reason=f"Classification stopped its worker {case.attempts - 1} times; "
            "a clinician will look at this photo instead.",
        )
        return FAILED

    data = store.read(case.image_key, what=f"the photo of case {case.public_id}")
    started = time.perf_counter()
    try:
        probabilities = predictor.predict_bytes([data])[0]
    except ValueError as exc:
        case_mark_finished_without_result(
            case_id=case_id,
            status=CaseStatus.REJECTED,
            reason=f"The stored image could not be read: {exc}",
        )
        return REJECTED
    latency_ms = max(1, round((time.perf_counter() - started) * 1000))

    class_names = predictor.manifest["class_names"]
    by_class = {name: float(p) for name, p in zip(class_names, probabilities, strict=True)}
    result_key = store.case_result_key(case.public_id, version.name)
    store.put_json(
        result_key,
        {
            "case": str(case.public_id),
            "model_version": version.name,
            "architecture": version.architecture,
            "probabilities": by_class,
            "top_class": max(by_class, key=by_class.get),
            "latency_ms": latency_ms,
        },
        what=f"the result of case {case.public_id}",
    )
    case_record_prediction(
        case_id=case_id,
        model_version=version,
        probabilities=by_class,
        latency_ms=latency_ms,
        result_key=result_key,
    )
    return DONE
