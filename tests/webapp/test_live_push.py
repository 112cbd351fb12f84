"""The results page's WebSocket, through the real Redis channel layer."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from webapp.audit.models import AuditEvent
from webapp.cases.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, CaseConsumer
from webapp.cases.models import Case, CaseStatus
from webapp.cases.publishing import cases_publish
from webapp.cases.services.jobs import case_mark_finished_without_result

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def communicator(case, user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(CaseConsumer.as_asgi(), f"/ws/cases/{case.public_id}/")
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"public_id": case.public_id}}
    return comm


@pytest.fixture(autouse=True)
def close_executor_connections():
    """Consumers query the database from asgiref's shared executor thread; close that thread's
    connection after each test so the test database can be dropped at the end of the session.

    Each test also starts with a fresh channel layer: channels_redis keeps a receive lock and buffer
    per layer instance, and each async test runs on a new event loop."""
    channel_layers.backends.clear()
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def live_case(make_case, patient):
    return make_case(patient)


async def test_owner_gets_current_state_then_pushed_updates(live_case, patient):
    comm = communicator(live_case, patient)
    connected, _ = await comm.connect()
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert first["id"] == str(live_case.public_id) and first["status"] == "queued"

    # database_sync_to_async closes its connection after the call, as the worker does per job.
    await database_sync_to_async(cases_publish)(public_ids=[live_case.public_id])
    pushed = await comm.receive_json_from(timeout=5)
    assert pushed["id"] == str(live_case.public_id)
    await comm.disconnect()


async def test_a_push_carries_the_state_read_after_the_change(live_case, patient):
    comm = communicator(live_case, patient)
    assert (await comm.connect())[0]
    assert (await comm.receive_json_from(timeout=5))["status"] == "queued"
    await database_sync_to_async(case_mark_finished_without_result)(
        case_id=live_case.pk, status=CaseStatus.FAILED, reason="The photo is too dark."
    )
    pushed = await comm.receive_json_from(timeout=5)
    assert pushed["status"] == "failed" and pushed["reason"] == "The photo is too dark."
    await comm.disconnect()


async def test_a_page_whose_case_is_gone_is_closed_at_the_next_push(live_case, patient):
    comm = communicator(live_case, patient)
    assert (await comm.connect())[0]
    await comm.receive_json_from(timeout=5)
    public_id = live_case.public_id
    await database_sync_to_async(Case.objects.filter(pk=live_case.pk).delete)()
    await database_sync_to_async(cases_publish)(public_ids=[public_id])
    closed = await comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}


# One refused socket per test: a test that left two refused consumers on its event loop hung in
# teardown, waiting on their channel-layer receives.
async def test_another_patient_is_closed(live_case, other_patient):
    connected, code = await communicator(live_case, other_patient).connect()
    assert not connected and code == CLOSE_NOT_FOUND


async def test_an_anonymous_visitor_is_closed(live_case):
    connected, code = await communicator(live_case, AnonymousUser()).connect()
    assert not connected and code == CLOSE_UNAUTHENTICATED


async def test_an_idle_page_stays_subscribed_past_the_layers_blocking_read(live_case, patient):
    # The consumer waits for pushes with 5 s blocking pops; twice that covers a read timeout
    # meeting a pop's end (redis-py's default read timeout is also 5 s).
    comm = communicator(live_case, patient)
    connected, _ = await comm.connect()
    assert connected
    await comm.receive_json_from(timeout=5)
    await asyncio.sleep(11)
    await database_sync_to_async(cases_publish)(public_ids=[live_case.public_id])
    pushed = await comm.receive_json_from(timeout=5)
    assert pushed["id"] == str(live_case.public_id)
    await comm.disconnect()


async def test_watching_pushes_and_refusals_are_audited(live_case, patient, other_patient):
    comm = communicator(live_case, patient)
    assert (await comm.connect())[0]
    await comm.receive_json_from(timeout=5)
    await database_sync_to_async(cases_publish)(public_ids=[live_case.public_id])
    await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    refused = communicator(live_case, other_patient)
    assert not (await refused.connect())[0]

    rows = await database_sync_to_async(
        lambda: list(
            AuditEvent.objects.order_by("id").values_list("actor_username", "action", "outcome")
        )
    )()
    assert rows == [
        (patient.username, "watch", "allowed"),
        (patient.username, "push", "allowed"),
        (other_patient.username, "watch", "denied"),
    ]
