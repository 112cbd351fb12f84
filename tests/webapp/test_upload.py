"""Uploads through the web form: what is stored, what is queued, and what bad input leaves behind."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.urls import reverse

from tests.images import jpeg_bytes, png_bytes
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case, CaseStatus
from webapp.cases.services.uploads import case_create
from webapp.intake.imaging import normalize_image
from webapp.storage import store

pytestmark = pytest.mark.django_db


def upload(client, data: bytes, name: str = "lesion.jpg", content_type: str = "image/jpeg"):
    return client.post(
        reverse("cases:upload"),
        {"image": SimpleUploadedFile(name, data, content_type=content_type)},
    )


def test_upload_stores_image_creates_case_and_enqueues_after_commit(
    login, patient, bucket_keys, broker_queue_length, django_capture_on_commit_callbacks
):
    client = login(patient)
    before_keys, before_jobs = bucket_keys(), broker_queue_length()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client, jpeg_bytes())
    # Nothing is enqueued until the transaction commits.
    assert broker_queue_length() == before_jobs
    for callback in callbacks:
        callback()

    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:results", args=[case.public_id])
    assert case.status == CaseStatus.QUEUED
    assert case.lesion.patient == patient and case.uploaded_by == patient
    assert case.original_filename == "lesion.jpg"
    # The key is generated, never the user's file name.
    assert "lesion" not in case.image_key
    assert bucket_keys() - before_keys == {case.image_key}
    assert broker_queue_length() == before_jobs + 1


def test_two_users_uploading_same_file_name_get_two_objects(
    login, patient, other_patient, bucket_keys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(login(patient), jpeg_bytes(seed=1), name="photo.jpg")
        upload(login(other_patient), jpeg_bytes(seed=2), name="photo.jpg")
    keys = {c.image_key for c in Case.objects.all()}
    assert len(keys) == 2
    assert keys <= bucket_keys()


BAD_INPUTS = [
    (b"", "empty"),
    (b"\xff", "one byte"),
    (b"<html><script>alert(1)</script></html>", "html"),
    (jpeg_bytes()[:200], "truncated"),
    (bytes(range(256)) * 40, "random"),
    (b"%PDF-1.4\n1 0 obj<<>>endobj\n", "pdf"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "svg"),
]


@pytest.mark.parametrize(("data", "label"), BAD_INPUTS, ids=[b[1] for b in BAD_INPUTS])
def test_bad_file_is_rejected_with_a_message_and_leaves_nothing(
    login, patient, bucket_keys, broker_queue_length, data, label
):
    client = login(patient)
    before_keys, before_jobs = bucket_keys(), broker_queue_length()
    response = upload(client, data, name="x.jpg")
    assert response.status_code == 400
    errors = response.context["form"].non_field_errors() + response.context["form"].errors.get(
        "image", []
    )
    assert errors, f"{label}: the page must say what was wrong"
    assert Case.objects.count() == 0
    assert bucket_keys() == before_keys
    assert broker_queue_length() == before_jobs


def test_oversized_file_is_rejected_before_decoding(login, patient, settings, bucket_keys):
    settings.UPLOAD_MAX_BYTES = 1000
    response = upload(login(patient), png_bytes(200, 200))
    assert response.status_code == 400
    assert "limit" in str(response.content)
    assert Case.objects.count() == 0


def test_url_to_loopback_is_refused_without_contacting_it(login, patient, bucket_keys):
    before = bucket_keys()
    response = login(patient).post(
        reverse("cases:upload"), {"image_url": "http://127.0.0.1:9/lesion.jpg"}
    )
    assert response.status_code == 400
    assert b"127.0.0.1" not in b"".join(
        e.encode() for e in response.context["form"].non_field_errors()
    )
    assert Case.objects.count() == 0
    assert bucket_keys() == before


def test_file_and_url_together_is_a_clear_error(login, patient):
    response = login(patient).post(
        reverse("cases:upload"),
        {
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
            "image_url": "https://example.org/a.jpg",
        },
    )
    assert response.status_code == 400
    assert "not both" in response.content.decode()


def test_anonymous_upload_redirects_to_login(client):
    response = client.get(reverse("cases:upload"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_clinician_uploads_for_assigned_patient_only(
    login, clinician, patient, other_patient, django_capture_on_commit_callbacks
):
    client = login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            reverse("cases:upload"),
            {
                "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
                "patient": patient.pk,
            },
        )
    assert ok.status_code == 302
    assert Case.objects.get().lesion.patient == patient
    refused = client.post(
        reverse("cases:upload"),
        {
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
            "patient": other_patient.pk,
        },
    )
    assert refused.status_code == 400
    assert Case.objects.count() == 1


def _page_and_api_answers(login, api, user, data) -> tuple[int, int]:
    page = login(user).post(reverse("cases:upload"), {**data, "image": photo()})
    through_api = api(user).post(
        reverse("api:case-list"), {**data, "image": photo()}, format="multipart"
    )
    return page.status_code, through_api.status_code


def photo():
    return SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg")


def test_the_page_and_the_api_answer_the_same_refusal_with_the_same_status(
    login, patient, clinician, settings, bucket_keys
):
    before = bucket_keys()
    # A clinician who names no patient: a request the use case cannot place.
    assert _page_and_api_answers(login, api_client, clinician, {}) == (400, 400)
    assert bucket_keys() == before
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # the object store is down
    assert _page_and_api_answers(login, api_client, patient, {}) == (503, 503)
    assert Case.objects.count() == 0


def test_an_idempotent_replay_answers_before_fetching_the_url(patient):
    client = api_client(patient)
    first = client.post(
        reverse("api:case-list"), {"image": photo(), "idempotency_key": "k1"}, format="multipart"
    )
    # The same key with a URL the guard would refuse: the earlier case answers, nothing is fetched.
    again = client.post(
        reverse("api:case-list"),
        {"image_url": "http://127.0.0.1:1/a.jpg", "idempotency_key": "k1"},
        format="json",
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Case.objects.count() == 1


def _normalized(seed: int = 0):
    return normalize_image(jpeg_bytes(seed=seed), max_bytes=10**7, max_pixels=10**7, max_side=512)


def _slow_put(monkeypatch, before_put=lambda key: None):
    """The photo's PUT takes 0.3 s: the rows' insert runs meanwhile (the two overlap)."""
    real_put = store.put_new

    def put(key, content, *, what):
        time.sleep(0.3)
        before_put(key)
        return real_put(key, content, what=what)

    monkeypatch.setattr(store, "put_new", put)


@pytest.mark.django_db(transaction=True)
def test_a_case_commits_only_once_its_photo_is_stored(patient, monkeypatch):
    committed_before_put = []

    def look(key):
        # From another connection, as any other process would see the database.
        try:
            committed_before_put.append(Case.objects.filter(image_key=key).exists())
        finally:
            connection.close()

    _slow_put(monkeypatch, look)
    created = case_create(uploaded_by=patient, patient=patient, image=_normalized())
    assert committed_before_put == [False]
    assert Case.objects.filter(pk=created.case.pk).exists()
    assert store.read(created.case.image_key, what="the photo") == _normalized().content


def test_a_case_that_fails_to_save_leaves_no_photo_though_its_write_was_under_way(
    patient, monkeypatch, bucket_keys
):
    before = bucket_keys()
    _slow_put(monkeypatch)

    def fail(**fields):
        raise OperationalError("the database went away")

    monkeypatch.setattr(Case.objects, "create", fail)
    with pytest.raises(OperationalError):
        case_create(uploaded_by=patient, patient=patient, image=_normalized(1))
    # Deleted once the PUT had ended, not before it (which would have left the photo behind):
    # look after any write still under way would have landed.
    time.sleep(0.5)
    assert bucket_keys() == before
    assert not Case.objects.exists()
