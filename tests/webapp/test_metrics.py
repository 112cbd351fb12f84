"""/metrics: for a scraper with the token or an administrator; counts what uploads did."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import UserFactory
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_need_the_token_or_an_administrator(client, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.force_login(UserFactory())
    assert client.get("/metrics").status_code == 403  # a patient
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    client.force_login(UserFactory(role="admin"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'skinsight_queue_depth{queue="inference"}' in response.content.decode()


def test_an_upload_is_counted_with_its_accept_stages(client, settings):
    settings.METRICS_TOKEN = "scrape-me"

    def scrape() -> str:
        return client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()

    before = scrape()
    client.force_login(UserFactory())
    photo = SimpleUploadedFile("a.jpg", jpeg_bytes(), "image/jpeg")
    assert client.post(reverse("cases:upload"), {"image": photo}).status_code == 302
    after = scrape()
    created = 'skinsight_uploads_total{outcome="created"}'
    assert _sample(after, created) == _sample(before, created) + 1
    for stage in ("normalize", "store", "record", "total"):
        count = f'skinsight_accept_stage_seconds_count{{stage="{stage}"}}'
        assert _sample(after, count) == _sample(before, count) + 1
