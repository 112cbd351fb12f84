"""Classify one case (the `cases.classify` task), or one case of a re-run (`cases.rerun`)."""

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from webapp.cases.models import Case, CaseStatus
from webapp.cases.services import (
    case_claim_for_classification,
    case_mark_finished_without_result,
    case_record_prediction,
    rerun_claim,
    rerun_record,
)
from webapp.modelops.models import ModelVersion
from webapp.modelops.selectors import model_version_get_active
from webapp.storage import store
from workers.model_cache import get_predictor

logger = logging.getLogger(__name__)

WAITING_FOR_MODEL = "waiting-for-model"
ALREADY_FINISHED = "already-finished"
DONE = "done"
REJECTED = "rejected"
FAILED = "failed"


@dataclass(frozen=True)
class Answer:
    probabilities: dict[str, float]
    latency_ms: int
    engine: str

    @property
    def top_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)


class UnreadablePhoto(ValueError):
    """The stored photo cannot be decoded: retrying will not help."""


def predict_stored_photo(case: Case, version: ModelVersion, predictor) -> Answer:
    """``version``'s calibrated probabilities for the case's stored photo."""
    data = store.read(case.image_key, what=f"the photo of case {case.public_id}")
    started = time.perf_counter()
    try:
        probabilities = predictor.predict_bytes([data])[0]
    except ValueError as exc:
        raise UnreadablePhoto(f"The stored image could not be read: {exc}") from exc
    latency_ms = max(1, round((time.perf_counter() - started) * 1000))
    class_names = predictor.manifest["class_names"]
    by_class = {name: float(p) for name, p in zip(class_names, probabilities, strict=True)}
    return Answer(by_class, latency_ms, predictor.engine_name)


def _result_json(case: Case, version: ModelVersion, answer: Answer, **extra) -> dict:
    return {
        "case": str(case.public_id),
        "model_version": version.name,
        "architecture": version.architecture,
        "probabilities": answer.probabilities,
        "top_class": answer.top_class,
        "latency_ms": answer.latency_ms,
        "engine": answer.engine,
        **extra,
    }


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
    try:
        answer = predict_stored_photo(case, version, predictor)
    except UnreadablePhoto as exc:
        case_mark_finished_without_result(
            case_id=case_id, status=CaseStatus.REJECTED, reason=str(exc)
        )
        return REJECTED
    result_key = store.case_result_key(case.public_id, version.name)
    store.put_json(
        result_key,
        _result_json(case, version, answer),
        what=f"the result of case {case.public_id}",
    )
    case_record_prediction(
        case_id=case_id,
        model_version=version,
        probabilities=answer.probabilities,
        latency_ms=answer.latency_ms,
        engine=answer.engine,
        result_key=result_key,
    )
    return DONE


def rerun_case(*, result_id: int) -> str:
    """Classify one case of a re-run with the re-run's version; its own prediction stays as it is."""
    result = rerun_claim(result_id=result_id)
    if result is None:
        return ALREADY_FINISHED
    version = result.rerun.model_version
    predictor = get_predictor(version)
    try:
        answer = predict_stored_photo(result.case, version, predictor)
    except UnreadablePhoto as exc:
        rerun_record(result_id=result_id, error=str(exc))
        return FAILED
    key = store.rerun_result_key(result.rerun.public_id, result.case.public_id)
    store.put_json(
        key,
        _result_json(result.case, version, answer, rerun=str(result.rerun.public_id)),
        what=f"the re-run result of case {result.case.public_id}",
    )
    rerun_record(
        result_id=result_id,
        probabilities=answer.probabilities,
        latency_ms=answer.latency_ms,
        engine=answer.engine,
        result_key=key,
    )
    return DONE
