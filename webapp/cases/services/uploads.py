"""The upload use case: a photo file or URL becomes a stored case with its job queued."""

from concurrent.futures import Future
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from webapp import io_threads
from webapp.accounts.models import Role, User
from webapp.cases.models import Case, Lesion
from webapp.cases.selectors import may_upload_for
from webapp.cases.services.jobs import classify_enqueue
from webapp.errors import ApplicationError, NotPermitted
from webapp.intake.imaging import (
    NormalizedImage,
)
from webapp.intake.photos import photo_from_file, photo_from_url
from webapp.metrics import ACCEPT_SECONDS, UPLOADS, timed
from webapp.storage import store


@dataclass(frozen=True)
class CaseCreated:
    case: Case
    created: bool  # False when an idempotency key replayed an earlier submission


def _check_may_upload_for(uploaded_by: User, patient: User) -> None:
    # One rule for forms, the API and this service: the patients the upload form offers.
    if not may_upload_for(uploaded_by, patient):
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
        photo, source_url = photo_from_file(image), ""
        original_filename = getattr(image, "name", "") or ""
    else:
        photo, source_url, original_filename = photo_from_url(image_url), image_url, ""
    return _case_store(
        uploaded_by=uploaded_by,
        patient=patient,
        image=photo,
        lesion=lesion,
        source_url=source_url,
        original_filename=original_filename,
        idempotency_key=idempotency_key,
        body_site=body_site,
    )


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
