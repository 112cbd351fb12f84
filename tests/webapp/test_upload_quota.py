"""The upload quota: per user, one count for every web process and for both the page and the API; 429 with
Retry-After when spent; a clinician who uploads for many patients has a larger allowance than a patient."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.throttling import SimpleRateThrottle

from tests.images import jpeg_bytes
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_quotas(monkeypatch):
    # DRF copies the configured rates onto the throttle class when it is imported.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"uploads": "2/hour", "clinician_uploads": "4/hour"}
    )
    # Counts are per user (fresh in each test) and the session starts with an empty Redis.


def _upload(client, seed: int, **fields):
    return client.post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile("a.jpg", jpeg_bytes(seed=seed), "image/jpeg"), **fields},
        format="multipart",
    )


def test_a_patient_past_the_quota_gets_429_with_retry_after_and_nothing_stored(
    patient, small_quotas, bucket_keys
):
    client = api_client(patient)
    assert [_upload(client, seed).status_code for seed in range(2)] == [201, 201]
    keys = bucket_keys()

    refused = _upload(client, 9)

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert Case.objects.count() == 2
    assert bucket_keys() == keys
    # Reads are not counted against it.
    assert client.get(reverse("api:case-list")).status_code == 200


def test_a_clinician_uploading_for_many_patients_has_a_larger_allowance(
    clinician, patient, small_quotas
):
    client = api_client(clinician)
    answers = [_upload(client, seed, patient=patient.username).status_code for seed in range(5)]
    assert answers == [201, 201, 201, 201, 429]


def test_the_upload_page_draws_on_the_same_quota(login, patient, small_quotas, bucket_keys):
    api = api_client(patient)
    assert _upload(api, 1).status_code == 201
    page = login(patient)
    upload = reverse("cases:upload")
    first = page.post(
        upload, {"image": SimpleUploadedFile("b.jpg", jpeg_bytes(seed=2), "image/jpeg")}
    )
    assert first.status_code == 302
    keys = bucket_keys()

    refused = page.post(
        upload, {"image": SimpleUploadedFile("c.jpg", jpeg_bytes(seed=3), "image/jpeg")}
    )

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "You have reached the number of photos you may upload" in refused.text
    assert Case.objects.count() == 2
    assert bucket_keys() == keys
    assert _upload(api, 4).status_code == 429  # one count for the page and the API
