"""Writes for cases: creating a case from a validated image, and the job's status transitions."""

import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ml.answer import Answer
from ml.classes import CLASSES
from webapp import io_threads
from webapp.accounts.models import Role, User
from webapp.cases.heatmaps import heatmaps_create
from webapp.cases.imaging import (
    ImageRejected,
    NormalizedImage,
    format_megabytes,
    normalize_image,
)
from webapp.cases.models import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    Case,
    CaseStatus,
    Decision,
    Lesion,
    Prediction,
    Rerun,
    RerunResult,
    RerunStatus,
    Review,
)
from webapp.cases.publishing import cases_publish
from webapp.cases.selectors import (
    case_visible_to,
    patients_selectable_by,
)
from webapp.cases.url_fetch import fetch_url
from webapp.config.celery import CLASSIFY_TASK, RERUN_TASK, enqueue_quietly, resend_missing
from webapp.errors import ApplicationError, Conflict, NotPermitted
from webapp.metrics import ACCEPT_SECONDS, UPLOADS, timed
from webapp.modelops.models import ModelVersion
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.common import ModelOpsError, require_admin
from webapp.storage import store

logger = logging.getLogger(__name__)


class InvalidTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class CaseCreated:
    case: Case
    created: bool  # False when an idempotency key replayed an earlier submission


def classify_enqueue(case_id: int) -> bool:
    """Send the case's job; False when the broker cannot take it. After a commit that is not the caller's
    failure: the case stays queued and the reconciler (`cases.reconcile`) sends it once the broker is back,
    so an upload is never answered with an error after its case was saved."""
    # By id only: the task re-reads the row, so no ORM object or image ever travels through the broker.
    return enqueue_quietly(CLASSIFY_TASK, case_id)


def _check_may_upload_for(uploaded_by: User, patient: User) -> None:
    # One rule for forms, the API and this service: the patients the upload form offers.
    if not patients_selectable_by(uploaded_by).filter(pk=patient.pk).exists():
        raise NotPermitted("You may upload only for yourself or for patients assigned to you.")


def _patient_of(uploaded_by: User, patient: User | None, lesion: Lesion | None) -> User:
    if lesion is not None:
        if patient is not None and patient.pk != lesion.patient_id:
            raise ApplicationError("That lesion belongs to another patient.")
        return lesion.patient
    if patient is not None:
        return patient
    if uploaded_by.role == Role.PATIENT:
        return uploaded_by
    raise ApplicationError("Name the patient this photo belongs to.", field="patient")


def _admit(uploaded_by: User, patient: User, idempotency_key: str) -> CaseCreated | None:
    """Refuse an upload for someone else's patient; the earlier case when the key was used before."""
    _check_may_upload_for(uploaded_by, patient)
    if idempotency_key:
        existing = Case.objects.filter(
            uploaded_by=uploaded_by, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            UPLOADS.labels("replayed").inc()
            return CaseCreated(case=existing, created=False)
    return None


def case_create(
    *,
    uploaded_by: User,
    patient: User,
    image: NormalizedImage,
    lesion: Lesion | None = None,
    source_url: str = "",
    original_filename: str = "",
    idempotency_key: str = "",
    body_site: str = "",
) -> CaseCreated:
    """Create a case from an image that is already validated (see `case_upload` for raw input)."""
    patient = _patient_of(uploaded_by, patient, lesion)
    return _admit(uploaded_by, patient, idempotency_key) or _case_store(
        uploaded_by=uploaded_by,
        patient=patient,
        image=image,
        lesion=lesion,
        source_url=source_url,
        original_filename=original_filename,
        idempotency_key=idempotency_key,
        body_site=body_site,
    )


@timed(ACCEPT_SECONDS, "total")
def case_upload(
    *,
    uploaded_by: User,
    image=None,
    image_url: str = "",
    patient: User | None = None,
    lesion: Lesion | None = None,
    body_site: str = "",
    idempotency_key: str = "",
) -> CaseCreated:
    """The one use case behind the upload page and the API: a photo file (``image``, an uploaded
    file) or an image URL becomes a case. The arguments are the upload form's and serializer's fields.

    The patient is the lesion's, else the one named, else the uploader when they are a patient.
    Permission and an idempotency replay are settled before anything is read or fetched; the
    file is judged by its content (never its name or declared type); a URL goes through the
    SSRF guard. Raises ApplicationError subclasses, which every entry point maps by `status`.
    """
    if bool(image) == bool(image_url):
        raise ApplicationError("Give either a photo file or the URL of a photo, not both.")
    patient = _patient_of(uploaded_by, patient, lesion)
    replayed = _admit(uploaded_by, patient, idempotency_key)
    if replayed is not None:
        return replayed
    if image:
        data, source_url = _read_upload(image), ""
        original_filename = getattr(image, "name", "") or ""
    else:
        data, source_url, original_filename = _fetch(image_url), image_url, ""
    return _case_store(
        uploaded_by=uploaded_by,
        patient=patient,
        image=_normalize(data),
        lesion=lesion,
        source_url=source_url,
        original_filename=original_filename,
        idempotency_key=idempotency_key,
        body_site=body_site,
    )


def _read_upload(image_file) -> bytes:
    if image_file.size > settings.UPLOAD_MAX_BYTES:
        UPLOADS.labels("rejected").inc()
        raise ImageRejected(
            f"The file is {format_megabytes(image_file.size)}; "
            f"the limit is {format_megabytes(settings.UPLOAD_MAX_BYTES)}."
        )
    image_file.seek(0)
    return image_file.read()


def _fetch(url: str) -> bytes:
    with timed(ACCEPT_SECONDS, "fetch"):
        return fetch_url(
            url,
            max_bytes=settings.UPLOAD_MAX_BYTES,
            timeout=settings.URL_FETCH_TIMEOUT,
            max_redirects=settings.URL_FETCH_MAX_REDIRECTS,
            allowed_networks=settings.URL_FETCH_ALLOWED_NETWORKS,
        ).content


def _case_store(
    *,
    uploaded_by: User,
    patient: User,
    image: NormalizedImage,
    lesion: Lesion | None,
    source_url: str,
    original_filename: str,
    idempotency_key: str,
    body_site: str,
) -> CaseCreated:
    """Store the image under a generated key, create the case and enqueue its job after commit.

    Either everything exists afterwards (object, rows, job) or nothing does. The object is written
    while the rows are inserted, and the rows commit only once it exists: a saved case always has
    its photo.
    """
    key = store.case_image_key(image.extension)
    writing = io_threads.start(_store_photo, key, image.content)
    try:
        with timed(ACCEPT_SECONDS, "record"), transaction.atomic():
            if lesion is None:
                lesion = Lesion.objects.create(patient=patient, body_site=body_site[:64])
            case = Case.objects.create(
                lesion=lesion,
                uploaded_by=uploaded_by,
                image_key=key,
                image_content_type=image.content_type,
                image_width=image.width,
                image_height=image.height,
                source_url=source_url,
                original_filename=original_filename[:255],
                sha256=image.sha256,
                idempotency_key=idempotency_key,
            )
            writing.result()
            transaction.on_commit(lambda: classify_enqueue(case.pk))
    except IntegrityError:
        _discard_photo(writing, key)
        if idempotency_key:
            # Two requests with one key raced; the other one won and is the answer.
            existing = Case.objects.filter(
                uploaded_by=uploaded_by, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return CaseCreated(case=existing, created=False)
        raise
    except BaseException:
        _discard_photo(writing, key)
        raise
    UPLOADS.labels("created").inc()
    return CaseCreated(case=case, created=True)


def _store_photo(key: str, content: bytes) -> str:
    with timed(ACCEPT_SECONDS, "store"):
        return store.put_new(key, content, what="the photo")


def _discard_photo(writing: Future, key: str) -> None:
    """The photo of a case that was not saved: deleted once its write has ended, if it was made."""
    if writing.exception() is None:
        store.delete_quietly(key)


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
    if model_version_get_active() is not None:
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
    now = timezone.now()
    claimed = Case.objects.filter(
        pk=case_id, status__in=[CaseStatus.QUEUED, CaseStatus.RUNNING]
    ).update(status=CaseStatus.RUNNING, started_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return Case.objects.select_related("lesion").get(pk=case_id)


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


def case_record_predictions(
    *,
    model_version,
    answers: Mapping[int, Answer],
    results_written: Callable[[], Mapping[int, Exception]] = dict,
) -> dict[int, Prediction | Exception]:
    """Store a batch's predictions and mark their cases done, in one transaction, each case once.

    Every case gets its own outcome: its new prediction; the existing one when a duplicate job
    recorded it first; InvalidTransition when the case finished otherwise meanwhile; the error
    that kept its result object from being written; or Case.DoesNotExist when it is gone. One
    case's outcome never stops the others.

    ``results_written`` is called inside the transaction, after the inserts and before the commit:
    it waits for the caller's writes of the answers' result objects (at ``store.case_result_key``;
    ``answers`` is keyed by case id) so that they overlap the
    database work) and names the cases whose object could not be written, with the error. Those
    are taken out again before the commit, so a recorded prediction always has its object.
    """
    by_case = dict(answers)
    outcomes: dict[int, Prediction | Exception] = {
        case_id: Case.DoesNotExist(f"Case {case_id} no longer exists.") for case_id in by_case
    }
    with transaction.atomic():
        # Locked in one order, so two batches that share a redelivered case cannot deadlock.
        cases = list(Case.objects.select_for_update().filter(pk__in=by_case).order_by("pk"))
        existing = {p.case_id: p for p in Prediction.objects.filter(case_id__in=by_case)}
        new: list[Prediction] = []
        for case in cases:
            if case.pk in existing:
                outcomes[case.pk] = existing[case.pk]
            elif CaseStatus.DONE not in ALLOWED_TRANSITIONS[case.status]:
                outcomes[case.pk] = InvalidTransition(
                    f"Case {case.pk} cannot go from {case.status} to {CaseStatus.DONE}."
                )
            else:
                new.append(_prediction(case, model_version, by_case[case.pk]))
        if not new:
            return outcomes
        Prediction.objects.bulk_create(new)
        Case.objects.filter(pk__in=[prediction.case_id for prediction in new]).update(
            status=CaseStatus.DONE, status_reason="", finished_at=timezone.now()
        )
        new = _keep_written(new, results_written(), outcomes)
        if not new:
            return outcomes
        done = [prediction.case_id for prediction in new]
        outcomes.update({prediction.case_id: prediction for prediction in new})
        transaction.on_commit(lambda: cases_publish(case_ids=done))
        # After the push: a heat map is never on a result's way to the patient.
        heatmaps_create(new)
    return outcomes


def _keep_written(
    new: list[Prediction], unwritten: Mapping[int, Exception], outcomes: dict
) -> list[Prediction]:
    """Undo, before the commit, the predictions whose result object could not be written: their
    cases stay running (their jobs retry them) and their outcome is the error."""
    lost = [prediction for prediction in new if prediction.case_id in unwritten]
    if lost:
        Prediction.objects.filter(pk__in=[prediction.pk for prediction in lost]).delete()
        Case.objects.filter(pk__in=[prediction.case_id for prediction in lost]).update(
            status=CaseStatus.RUNNING, finished_at=None
        )
        outcomes.update({p.case_id: unwritten[p.case_id] for p in lost})
    return [prediction for prediction in new if prediction.case_id not in unwritten]


def _prediction(case: Case, model_version, answer: Answer) -> Prediction:
    key = store.case_result_key(case.public_id, model_version.name)
    return Prediction(
        case_id=case.pk,
        model_version=model_version,
        **Prediction.answered(answer, key),
        decision=Decision.REFER if answer.decision.refer else Decision.ROUTINE,
        decision_reasons=list(answer.decision.reasons),
        malignant_probability=answer.decision.malignant_probability,
    )


def case_mark_finished_without_result(*, case_id: int, status: str, reason: str) -> Case | None:
    """Fail or reject a case with a reason the user can read. No-op when it is already finished."""
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.status in TERMINAL_STATUSES:
            return case
        _transition(case, status, reason)
        transaction.on_commit(lambda: cases_publish(case_ids=[case_id]))
    return case


def _normalize(data: bytes) -> NormalizedImage:
    try:
        with timed(ACCEPT_SECONDS, "normalize"):
            image = normalize_image(
                data,
                max_bytes=settings.UPLOAD_MAX_BYTES,
                max_pixels=settings.UPLOAD_MAX_PIXELS,
                max_side=settings.UPLOAD_MAX_SIDE,
                max_jpeg_pixels=settings.UPLOAD_MAX_JPEG_PIXELS,
            )
        if image.quality_problems and settings.UPLOAD_QUALITY_GATE:
            # A retake is better than a guess: nothing is stored for a photo that cannot be judged.
            raise ImageRejected(
                " ".join(problem.message for problem in image.quality_problems),
                quality=[problem.code for problem in image.quality_problems],
            )
    except ImageRejected:
        UPLOADS.labels("rejected").inc()
        raise
    return image


REVIEW_NOTES_MAX = 4000


def case_delete(*, case: Case, by: User) -> None:
    """Delete a case at its patient's request: its rows (prediction, reviews, re-run answers) at once,
    and after commit the photo and every result object made from it. The audit trail keeps the request;
    a lesion left without photos goes too."""
    if not (by.pk == case.lesion.patient_id or by.is_admin_role):
        raise NotPermitted("Only the patient, or an administrator, may delete this photo.")
    with transaction.atomic():
        locked = Case.objects.select_for_update().select_related("lesion").get(pk=case.pk)
        if locked.status == CaseStatus.RUNNING:
            raise Conflict("This photo is being classified right now; try again in a minute.")
        keys = [
            locked.image_key,
            *locked.rerun_results.exclude(result_key="").values_list("result_key", flat=True),
        ]
        results = store.case_results_prefix(locked.public_id)
        lesion = locked.lesion
        locked.rerun_results.all().delete()
        locked.reviews.all().delete()
        locked.delete()  # the prediction goes with it (cascade)
        if not lesion.cases.exists():
            lesion.delete()
        transaction.on_commit(lambda: _delete_objects(keys, results))


def _delete_objects(keys: list[str], prefix: str) -> None:
    # After commit: a failure leaves an unreachable object (logged), never a row without its photo.
    for key in keys:
        store.delete_quietly(key)
    store.delete_prefix_quietly(prefix)


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
