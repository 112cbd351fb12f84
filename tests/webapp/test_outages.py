"""A service that cannot be reached is a 503 with Retry-After and a plain message, never a 500 with a
trace; requests no view handles answer JSON under /api/; malformed bodies are 400s that say why."""

import json

import pytest
import redis
from django.db import OperationalError
from django.urls import reverse

from tests.webapp.test_access_control import api_client
from webapp.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _database_down(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: refused")


def _cache_down(*args, **kwargs):
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:5432. Connection refused.")


@pytest.mark.parametrize("outage", [_database_down, _cache_down])
def test_an_api_read_while_a_service_is_down_is_a_503_without_a_trace(patient, monkeypatch, outage):
    client = api_client(patient)
    monkeypatch.setattr("webapp.cases.api.case_visible_to", outage)
    response = client.get(reverse("api:case-list"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {
        "detail": "The service is unavailable for a moment; nothing was saved. Please try again."
    }
    assert "5432" not in response.content.decode()


def test_a_page_while_the_database_is_down_is_a_503_page(patient, login, monkeypatch):
    client = login(patient)
    monkeypatch.setattr("webapp.cases.views.case_visible_to", _database_down)
    response = client.get(reverse("cases:history"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "unavailable for a moment" in page and "OperationalError" not in page


def test_patient_data_is_not_handed_out_when_its_read_cannot_be_audited(
    make_case, patient, monkeypatch
):
    case = make_case(patient)
    client = api_client(patient)
    monkeypatch.setattr("webapp.audit.middleware.audit_record", _database_down)
    response = client.get(reverse("api:case-detail", args=[case.public_id]))
    assert response.status_code == 503
    assert str(case.public_id) not in response.content.decode()


def test_a_read_that_is_audited_is_answered(make_case, patient):
    case = make_case(patient)
    response = api_client(patient).get(reverse("api:case-detail", args=[case.public_id]))
    assert response.status_code == 200
    assert AuditEvent.objects.filter(object_id=str(case.public_id), action="read").count() == 1


@pytest.mark.parametrize("path", ["/api/no-such-route/", "/api/cases/not-a-uuid/"])
def test_an_unknown_api_path_answers_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_page_is_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_token_request_that_is_not_an_object_is_a_400(client):
    response = client.post(reverse("api:token"), "[null, null]", content_type="application/json")
    assert response.status_code == 400
    assert "username" in response.json()["detail"]


def test_json_with_an_unpaired_surrogate_is_refused_by_name(patient):
    response = api_client(patient).post(
        reverse("api:case-list"),
        '{"image_url": "https://example.org/a.jpg", "body_site": "arm\\ud800"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "unpaired UTF-16 surrogate" in response.json()["detail"]


def test_a_nul_character_in_a_reference_is_a_field_error_not_a_failed_query(clinician):
    response = api_client(clinician).post(
        reverse("api:case-list"),
        json.dumps({"image_url": "https://example.org/a.jpg", "patient": "pat\x00ient"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["patient"]


def test_an_empty_page_number_is_an_invalid_page(patient):
    client = api_client(patient)
    assert client.get(reverse("api:case-list"), {"page": ""}).status_code == 404
    assert client.get(reverse("api:case-list")).status_code == 200
