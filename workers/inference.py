"""Classify a batch of cases (the `cases.classify` task), or one case of a re-run (`cases.rerun`)."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from ml.answer import Answer
from ml.preprocess import ImageDecodeError
from webapp.cases.models import Case, CaseStatus
from webapp.cases.services.jobs import (
    case_mark_finished_without_result,
    cases_claim_for_classification,
)
from webapp.cases.services.predictions import case_record_predictions
from webapp.io_threads import in_threads, start
from webapp.metrics import BATCH_SIZE, JOB_STAGE_SECONDS
from webapp.modelops.models import ModelVersion
from webapp.modelops.selectors import model_version_get_active
from webapp.reruns.services import rerun_claim, rerun_record
from webapp.storage import store
from workers.model_cache import get_predictor
from workers.outcomes import JobOutcome, Outcome

logger = logging.getLogger(__name__)


class UnreadablePhoto(ValueError):
    """The stored photo cannot be decoded: retrying will not help."""


def predict_stored_photo(case: Case, version: ModelVersion, predictor) -> Answer:
    """``version``'s calibrated probabilities for the case's stored photo (one job alone)."""
    data = store.read(case.image_key, what=f"the photo of case {case.public_id}")
    started = time.perf_counter()
    batch = _model_input(predictor, data)[np.newaxis]
    probabilities = predictor.predict_batch(batch)[0]
    return predictor.answer(probabilities, _ms_since(started))


def _model_input(predictor, data: bytes) -> np.ndarray:
    try:
        return predictor.model_input(data)
    except ImageDecodeError as exc:
        raise UnreadablePhoto(f"The stored image could not be read: {exc}") from exc


def _ms_since(started: float) -> int:
    return max(1, round((time.perf_counter() - started) * 1000))


def _note_stage(timings: dict[str, int], stage: str, seconds: float) -> None:
    """Add a stage's wall time to the batch's log line and the ``skinsight_job_stage_seconds``
    metric."""
    timings[stage] = timings.get(stage, 0) + round(seconds * 1000)
    JOB_STAGE_SECONDS.labels(stage).observe(seconds)


@contextmanager
def stage_timer(timings: dict[str, int], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        _note_stage(timings, stage, time.perf_counter() - started)


def _result_json(case: Case, version: ModelVersion, answer: Answer, **extra) -> dict:
    return {
        "case": str(case.public_id),
        "model_version": version.name,
        "architecture": version.architecture,
        **answer.as_json(),
        **extra,
    }


@dataclass
class _Claimed:
    """One job of a batch while it runs: its case, and its photo once fetched and decoded."""

    case: Case
    pixels: np.ndarray | None = None
    prepare_ms: int = 0


def _claim(case_ids: list[int]) -> dict[int, Case | Outcome]:
    """Each case claimed for this batch, or the outcome that ends its job now."""
    claimed = cases_claim_for_classification(case_ids=case_ids)
    ended: dict[int, Case | Outcome] = {}
    for case_id in case_ids:
        case = claimed.get(case_id)
        if case is None:
            ended[case_id] = Outcome.ALREADY_FINISHED
        elif case.attempts > settings.CLASSIFY_MAX_ATTEMPTS:
            case_mark_finished_without_result(
                case_id=case_id,
                status=CaseStatus.FAILED,
                reason=f"Classification stopped its worker {case.attempts - 1} times; "
                "a clinician will look at this photo instead.",
            )
            ended[case_id] = Outcome.FAILED
        else:
            ended[case_id] = case
    return ended


def classify_cases(case_ids: list[int]) -> dict[int, str | Exception]:
    """Classify a batch of cases with one model call; every case gets its own outcome.

    The outcome is Outcome.DONE, Outcome.REJECTED (its photo does not decode), Outcome.FAILED, Outcome.ALREADY_FINISHED,
    Outcome.WAITING_FOR_MODEL, or the exception that stopped that case alone (the task retries it).
    Raises only for what concerns the whole batch (the active model cannot be loaded).
    """
    version = model_version_get_active()
    if version is None:
        # The cases stay queued; activating a model enqueues every waiting case.
        logger.info("%s case(s) wait: no model is active", len(case_ids))
        return dict.fromkeys(case_ids, JobOutcome(Outcome.WAITING_FOR_MODEL))
    # Load before claiming, so a broken bundle leaves the cases queued rather than half-run.
    predictor = get_predictor(version)
    outcomes: dict[int, Outcome | Exception] = {}
    jobs: dict[int, _Claimed] = {}
    for case_id, claimed in _claim(case_ids).items():
        if isinstance(claimed, Outcome):
            outcomes[case_id] = claimed
        else:
            jobs[case_id] = _Claimed(claimed)
    timings = {"jobs": len(case_ids)}
    BATCH_SIZE.observe(len(case_ids))
    try:
        ended = _classify_claimed(version, predictor, jobs, outcomes, timings)
        return {case_id: JobOutcome.of(outcome) for case_id, outcome in ended.items()}
    finally:
        logger.info("batch %s", " ".join(f"{k}={v}" for k, v in timings.items()))


def _classify_claimed(
    version: ModelVersion,
    predictor,
    jobs: dict[int, _Claimed],
    outcomes: dict[int, Outcome | Exception],
    timings: dict[str, int],
) -> dict[int, Outcome | Exception]:
    def prepare(job: _Claimed) -> None:
        data = store.read(job.case.image_key, what=f"the photo of case {job.case.public_id}")
        started = time.perf_counter()
        job.pixels = _model_input(predictor, data)
        job.prepare_ms = _ms_since(started)

    with stage_timer(timings, "fetch_decode"):
        prepared = in_threads(lambda case_id: prepare(jobs[case_id]), jobs)
    outcomes.update({k: v for k, v in prepared.items() if isinstance(v, Exception)})
    ready = {case_id: job for case_id, job in jobs.items() if case_id not in outcomes}
    for case_id, exc in list(outcomes.items()):
        if isinstance(exc, UnreadablePhoto):
            case_mark_finished_without_result(
                case_id=case_id, status=CaseStatus.REJECTED, reason=str(exc)
            )
            outcomes[case_id] = Outcome.REJECTED
    if not ready:
        return outcomes

    with stage_timer(timings, "infer"):
        probabilities = predictor.predict_batch(np.stack([job.pixels for job in ready.values()]))
    answers = {
        case_id: predictor.answer(row, job.prepare_ms + timings["infer"])
        for (case_id, job), row in zip(ready.items(), probabilities, strict=True)
    }

    keys = {
        case_id: store.case_result_key(job.case.public_id, version.name)
        for case_id, job in ready.items()
    }

    def store_result(case_id: int) -> None:
        case = ready[case_id].case
        store.put_json(
            keys[case_id],
            _result_json(case, version, answers[case_id]),
            what=f"the result of case {case.public_id}",
        )

    # The result objects are written while the batch's predictions are inserted; those commit only
    # once their objects exist (see case_record_predictions).
    writes_started = time.perf_counter()
    writes = {case_id: start(store_result, case_id) for case_id in ready}

    def results_written() -> dict[int, Exception]:
        errors = {case_id: write.exception() for case_id, write in writes.items()}
        _note_stage(timings, "store", time.perf_counter() - writes_started)
        return {case_id: error for case_id, error in errors.items() if error is not None}

    with stage_timer(timings, "record"):
        recorded = case_record_predictions(
            model_version=version,
            answers=answers,
            results_written=results_written,
        )
    outcomes.update(
        {k: v if isinstance(v, Exception) else Outcome.DONE for k, v in recorded.items()}
    )
    return outcomes


def rerun_case(*, result_id: int) -> Outcome:
    """Classify one case of a re-run with the re-run's version; its own prediction stays as it is."""
    result = rerun_claim(result_id=result_id)
    if result is None:
        return Outcome.ALREADY_FINISHED
    version = result.rerun.model_version
    predictor = get_predictor(version)
    try:
        answer = predict_stored_photo(result.case, version, predictor)
    except UnreadablePhoto as exc:
        rerun_record(result_id=result_id, error=str(exc))
        return Outcome.FAILED
    key = store.rerun_result_key(result.rerun.public_id, result.case.public_id)
    store.put_json(
        key,
        _result_json(result.case, version, answer, rerun=str(result.rerun.public_id)),
        what=f"the re-run result of case {result.case.public_id}",
    )
    rerun_record(result_id=result_id, answer=answer, result_key=key)
    return Outcome.DONE
