"""The upload quality gate: real photos pass; blurred, dark, washed-out, tiny and non-skin ones get a retake request."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageFilter

from tests.images import encode, jpeg_bytes, photo_array
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case
from webapp.intake.quality import photo_quality_problems


def codes(image: Image.Image) -> list[str]:
    return [problem.code for problem in photo_quality_problems(image.convert("RGB"))]


@pytest.fixture
def real_photos(shared_dir):
    folder = shared_dir / "data" / "fullsize-samples" / "images"
    return [Image.open(path).convert("RGB") for path in sorted(folder.glob("*.jpg"))]


def test_every_shared_sample_passes(real_photos):
    assert len(real_photos) == 126
    refused = {i: codes(photo) for i, photo in enumerate(real_photos) if codes(photo)}
    assert refused == {}


def test_strongly_blurred_and_dark_copies_are_refused(real_photos):
    blurred = [codes(p.filter(ImageFilter.GaussianBlur(8))) for p in real_photos[::5]]
    assert all("blurred" in c for c in blurred)
    dark = [codes(Image.eval(p, lambda v: int(v * 0.15))) for p in real_photos[::5]]
    assert all("too_dark" in c for c in dark)


@pytest.mark.parametrize(
    ("picture", "expected"),
    [
        (Image.new("RGB", (40, 30), (200, 150, 130)), ["too_small"]),
        (
            Image.fromarray(np.full((300, 400, 3), 252, np.uint8)),
            ["overexposed", "not_skin"],
        ),
        (Image.fromarray(photo_array(400, 300)).convert("L"), ["not_skin"]),
    ],
    ids=["tiny", "white", "greyscale"],
)
def test_synthetic_failures_name_their_problem(picture, expected):
    assert codes(picture) == expected


def test_a_green_picture_is_not_skin():
    array = photo_array(400, 300).astype(np.float64)
    green = np.stack([array[..., 2] * 0.4, array[..., 0], array[..., 2] * 0.5], -1)
    assert codes(Image.fromarray(green.astype(np.uint8))) == ["not_skin"]


@pytest.mark.django_db
def test_a_dark_upload_asks_for_a_retake_and_stores_nothing(patient, bucket_keys, settings):
    dark = (photo_array(400, 300).astype(np.float64) * 0.15).astype(np.uint8)
    before = bucket_keys()
    client = api_client(patient)
    response = client.post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile("dark.jpg", encode(dark, "JPEG"), "image/jpeg")},
        format="multipart",
    )
    assert response.status_code == 400
    assert "too dark" in response.json()["detail"] and response.json()["quality"] == ["too_dark"]
    assert Case.objects.count() == 0 and bucket_keys() == before

    settings.UPLOAD_QUALITY_GATE = False  # a deployment that screens photos itself
    accepted = client.post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile("dark.jpg", encode(dark, "JPEG"), "image/jpeg")},
        format="multipart",
    )
    assert accepted.status_code == 201


def test_the_test_suites_own_photos_pass():
    # Every upload test relies on these being taken for photos in focus.
    for size in ((96, 72), (600, 450), (2000, 1500)):
        assert codes(Image.open(io.BytesIO(jpeg_bytes(*size)))) == []
