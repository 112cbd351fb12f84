"""Only administrators reach model operations, on every page, API route and socket; everyone signed in
may read the active model's card."""

import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import (
    AdminFactory,
    ClinicianFactory,
    ModelVersionFactory,
    TrainingRunFactory,
    UserFactory,
)
from webapp.modelops.consumers import CLOSE_FORBIDDEN, TrainingRunConsumer
from webapp.modelops.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return TrainingRunFactory()


@pytest.fixture
def version():
    return ModelVersionFactory(name="v1", manifest={"class_names": []})


def page_routes(run, version):
    return [
        ("get", reverse("modelops:dashboard")),
        ("get", reverse("modelops:run-new")),
        ("post", reverse("modelops:run-new")),
        ("get", reverse("modelops:dataset-new")),
        ("post", reverse("modelops:dataset-new")),
        ("get", reverse("modelops:run", args=[run.public_id])),
        ("get", reverse("modelops:run-state", args=[run.public_id])),
        ("post", reverse("modelops:run-cancel", args=[run.public_id])),
        ("post", reverse("modelops:run-repeat", args=[run.public_id])),
        ("get", reverse("modelops:run-artefact", args=[run.public_id, "log"])),
        ("get", reverse("modelops:version", args=[version.name])),
        ("post", reverse("modelops:version-promote", args=[version.name])),
        ("post", reverse("modelops:version-evaluate", args=[version.name])),
        (
            "get",
            reverse("modelops:version-artefact", args=[version.name, "e" * 64, "reliability.png"]),
        ),
        ("post", reverse("modelops:rollback")),
        ("post", reverse("reruns:rerun-new", args=[version.name])),
        ("get", reverse("modelops:import-new")),
        ("post", reverse("modelops:import-new")),
        ("get", reverse("modelops:import", args=[uuid.uuid4()])),
        ("get", reverse("reruns:rerun", args=[uuid.uuid4()])),
    ]


def api_routes(run, version):
    return [
        ("get", reverse("api:run-list")),
        ("post", reverse("api:run-list")),
        ("get", reverse("api:run-detail", args=[run.public_id])),
        ("post", reverse("api:run-cancel", args=[run.public_id])),
        ("get", reverse("api:dataset-list")),
        ("post", reverse("api:dataset-list")),
        ("get", reverse("api:model-list")),
        ("get", reverse("api:model-detail", args=[version.name])),
        ("post", reverse("api:model-promote", args=[version.name])),
        ("post", reverse("api:model-rollback")),
        ("post", reverse("api:model-rerun", args=[version.name])),
        ("post", reverse("api:import-list")),
        ("get", reverse("api:import-detail", args=[uuid.uuid4()])),
        ("get", reverse("api:rerun-detail", args=[uuid.uuid4()])),
    ]


@pytest.mark.parametrize("role", ["patient", "clinician"])
def test_non_admins_get_403_on_every_page_and_nothing_changes(client, run, version, role):
    user = UserFactory() if role == "patient" else ClinicianFactory()
    client.force_login(user)
    for method, url in page_routes(run, version):
        response = getattr(client, method)(url)
        assert response.status_code == 403, (method, url, response.status_code)
    run.refresh_from_db()
    assert run.cancel_requested_at is None and TrainingRun.objects.count() == 1


@pytest.mark.parametrize("role", ["patient", "clinician"])
def test_non_admins_get_403_on_every_api_route(run, version, role):
    user = UserFactory() if role == "patient" else ClinicianFactory()
    api = APIClient()
    api.force_authenticate(user)
    for method, url in api_routes(run, version):
        assert getattr(api, method)(url, {}, format="json").status_code == 403, (method, url)


def test_anonymous_visitors_are_sent_to_log_in_or_get_401(client, run, version):
    for method, url in page_routes(run, version):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    api = APIClient()
    for method, url in api_routes(run, version):
        assert getattr(api, method)(url).status_code == 401, url


def test_admins_reach_the_pages(client, run, version):
    client.force_login(AdminFactory())
    assert client.get(reverse("modelops:dashboard")).status_code == 200
    assert client.get(reverse("modelops:run", args=[run.public_id])).status_code == 200
    assert client.get(reverse("modelops:version", args=[version.name])).status_code == 200
    assert client.get(reverse("modelops:run", args=[uuid.uuid4()])).status_code == 404


def test_everyone_signed_in_reads_the_model_card(client, version):
    from webapp.modelops.services.registry import model_version_activate

    client.force_login(UserFactory())
    assert "No model is active yet" in client.get(reverse("modelops:card")).content.decode()
    model_version_activate(version=version, reason="test")
    page = client.get(reverse("modelops:card")).content.decode()
    assert "v1" in page and "not a diagnosis" in page
    api = APIClient()
    api.force_authenticate(UserFactory())
    assert api.get(reverse("api:model-active")).json()["name"] == "v1"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_progress_socket_is_closed_to_non_admins(run):
    from channels.db import database_sync_to_async

    clinician = await database_sync_to_async(ClinicianFactory)()
    comm = WebsocketCommunicator(
        TrainingRunConsumer.as_asgi(), f"/ws/training-runs/{run.public_id}/"
    )
    comm.scope["user"] = clinician
    comm.scope["url_route"] = {"kwargs": {"public_id": run.public_id}}
    connected, code = await comm.connect()
    assert not connected and code == CLOSE_FORBIDDEN
