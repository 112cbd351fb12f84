"""Every crafted input of the validator's catalogue, sent through the web form and the REST API.

Each must get a 4xx that says what was wrong, and leave no case row, no S3 object and no job.
"""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.images import jpeg_bytes
from tests.webapp import imaging_samples
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db

CRAFTED = sorted(imaging_samples.REJECTED.items())
# Names a client may send: the stored key must never come from them.
# Django's and DRF's file fields catch an empty upload before our validator, in their own words.
FIELD_MESSAGES = {"empty": "The submitted file is empty."}
HOSTILE_NAMES = [
    "photo.jpg",
    "../../etc/passwd.jpg",
    "a.jpg\x00.html",
    "x.php.jpg",
    "..\\..\\win.ini",
]


@pytest.mark.parametrize(("label", "sample"), CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_file_through_the_form(
    label, sample, login, patient, bucket_keys, broker_queue_length
):
    make, fragment = sample
    client = login(patient)
    before_keys, before_jobs = bucket_keys(), broker_queue_length()
    name = HOSTILE_NAMES[hash(label) % len(HOSTILE_NAMES)]
    response = client.post(
        reverse("cases:upload"),
        {"image": SimpleUploadedFile(name, make(), content_type="image/jpeg")},
    )
    assert response.status_code == 400
    assert FIELD_MESSAGES.get(label, fragment) in html.unescape(response.content.decode())
    assert Case.objects.count() == 0
    assert bucket_keys() == before_keys
    assert broker_queue_length() == before_jobs


@pytest.mark.parametrize(("label", "sample"), CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_file_through_the_api(label, sample, patient, bucket_keys):
    make, fragment = sample
    before = bucket_keys()
    response = api_client(patient).post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile("lesion.jpg", make(), content_type="image/jpeg")},
        format="multipart",
    )
    assert response.status_code == 400
    assert FIELD_MESSAGES.get(label, fragment) in str(response.json())
    assert Case.objects.count() == 0
    assert bucket_keys() == before


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_names_never_reach_the_storage_key(
    name, login, patient, s3_client, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(patient).post(
            reverse("cases:upload"),
            {"image": SimpleUploadedFile(name, jpeg_bytes(), content_type="text/html")},
        )
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.image_key.startswith("cases/images/") and case.image_key.endswith(".jpg")
    assert ".." not in case.image_key and "\x00" not in case.image_key
    head = s3_client.head_object(Bucket=settings.S3_BUCKET, Key=case.image_key)
    assert head["ContentType"] == "image/jpeg"


def test_very_large_photo_is_downscaled_not_refused(
    login, patient, s3_client, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(patient).post(
            reverse("cases:upload"),
            {"image": SimpleUploadedFile("big.jpg", imaging_samples.large_photo_jpeg())},
        )
    assert response.status_code == 302
    case = Case.objects.get()
    assert max(case.image_width, case.image_height) == settings.UPLOAD_MAX_SIDE
    body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=case.image_key)["Body"]
    with Image.open(body) as stored:
        assert max(stored.size) == settings.UPLOAD_MAX_SIDE
        assert not stored.getexif()
