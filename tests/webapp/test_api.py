import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.images import jpeg_bytes
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db


def test_upload_with_idempotency_key_twice_is_one_case(
    patient, bucket_keys, broker_queue_length, django_capture_on_commit_callbacks
):
    client = api_client(patient)
    before_jobs, before_keys = broker_queue_length(), bucket_keys()
    responses = []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            responses.append(
                client.post(
                    reverse("api:case-list"),
                    {"image": SimpleUploadedFile("a.jpg", jpeg_bytes(), "image/jpeg")},
                    format="multipart",
                    HTTP_IDEMPOTENCY_KEY="visit-42-photo-1",
                )
            )
    assert [r.status_code for r in responses] == [201, 200]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Case.objects.count() == 1
    assert len(bucket_keys() - before_keys) == 1
    assert broker_queue_length() == before_jobs + 1


def test_upload_response_describes_the_queued_case(patient, django_capture_on_commit_callbacks):
    client = api_client(patient)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api:case-list"),
            {"image": SimpleUploadedFile("a.jpg", jpeg_bytes(), "image/jpeg")},
            format="multipart",
        )
    listed = client.get(reverse("api:case-list")).json()["results"]
    assert [row["waiting_for_model"] for row in listed] == [True]
    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "queued"
    assert body["prediction"] is None
    assert body["waiting_for_model"] is True  # no model is active in this test


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "A JSON upload names its photo with 'image_url'"),
        ({"image": "a.jpg"}, "post multipart/form-data with 'image'"),
        ({"image_url": "ftp://example.org/a.jpg"}, "Only http and https"),
        ({"image_url": "http://localhost:1/a.jpg"}, "not reachable"),
    ],
)
def test_bad_api_uploads_get_400_with_a_reason(patient, bucket_keys, payload, fragment):
    before = bucket_keys()
    response = api_client(patient).post(reverse("api:case-list"), payload, format="json")
    assert response.status_code == 400
    assert fragment in str(response.json())
    assert Case.objects.count() == 0
    assert bucket_keys() == before


def test_non_image_upload_gets_400_naming_the_problem(patient):
    response = api_client(patient).post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile("a.jpg", b"<html>hi</html>", "image/jpeg")},
        format="multipart",
    )
    assert response.status_code == 400
    assert "HTML" in response.json()["detail"]
    assert Case.objects.count() == 0


def test_openapi_schema_lists_the_case_routes(client):
    response = client.get(reverse("api:schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/cases/" in schema["paths"] and "/api/cases/{public_id}/" in schema["paths"]
    assert "post" in schema["paths"]["/api/cases/"]


def test_clinician_names_an_assigned_patient(
    clinician, patient, other_patient, django_capture_on_commit_callbacks
):
    client = api_client(clinician)

    def post(**extra):
        return client.post(
            reverse("api:case-list"),
            {"image": SimpleUploadedFile("a.jpg", jpeg_bytes(), "image/jpeg"), **extra},
            format="multipart",
        )

    missing = post()
    assert missing.status_code == 400 and "Name the patient" in str(missing.json())
    unassigned = post(patient=other_patient.username)
    assert unassigned.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        ok = post(patient=patient.username)
    assert ok.status_code == 201
    case = Case.objects.get()
    assert case.lesion.patient == patient and case.uploaded_by == clinician


def test_a_multipart_upload_gives_exactly_one_of_a_file_and_a_url(patient):
    neither = api_client(patient).post(reverse("api:case-list"), {}, format="multipart")
    assert neither.status_code == 400 and "exactly one" in str(neither.json())
