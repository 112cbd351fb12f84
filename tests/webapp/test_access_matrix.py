"""The access matrix: every route of the portal, read by every kind of caller.

Callers: anonymous, the patient, another patient, the patient's clinician, a clinician of other
patients, and an admin; pages with a session, the API with a token. Each route is listed with what it
shows; a route missing from this file (or from the tests it names) fails the first test, so a new route
cannot ship without its row. A caller who may not see a case gets the same 404 as for a missing one;
lists must not leak another patient's case.
"""

import uuid
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import AdminFactory, ModelVersionFactory, answer_for
from tests.webapp.test_access_control import api_client
from tests.webapp.test_live_push import close_executor_connections  # noqa: F401  (autouse)
from webapp.audit.middleware import AUDITED_ROUTES
from webapp.audit.models import AuditEvent
from webapp.cases.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, CaseConsumer
from webapp.cases.models import HeatMap, HeatMapStatus
from webapp.cases.services.jobs import case_claim_for_classification
from webapp.cases.services.predictions import case_record_predictions
from webapp.storage import store

pytestmark = pytest.mark.django_db

TESTS = Path(__file__).resolve().parents[1]
ALLOWED, OTHERS = ("patient", "clinician", "admin"), ("other_patient", "unassigned_clinician")
EVERYONE = (*ALLOWED, *OTHERS)

# What each route shows; kwargs are filled from the fixture's objects.
CASE = {  # one case: its people read it; everyone else gets the 404 of a missing case
    "cases:results": "page",
    "cases:state": "page",
    "cases:lesion": "page",
    "api:case-detail": "api",
    "api:case-image": "api",
    "api:case-heatmap": "api",
    "api:case-export": "api",
    "api:case-fhir": "api",
    "api:case-reviews": "api",
    "api:lesion-detail": "api",
}
LISTS = {  # every signed-in caller gets 200, showing only the cases they may see
    "cases:history": "page",
    "cases:lesions": "page",
    "api:case-list": "api",
    "api:lesion-list": "api",
}
CLINICAL_LISTS = {"cases:queue": "page", "api:review-queue": "api"}  # patients: 403
SIGNED_IN = {  # no patient data: any signed-in caller
    "cases:upload": "page",
    "guidance:table": "page",
    "guidance:diagnosis": "page",
    "modelops:card": "page",
    "api:guidance-list": "api",
}
ADMIN_ONLY = {"audit:trail": "page"}
PUBLIC = {
    "pages:home": "page",
    "pages:about": "page",
    "pages:contact": "page",
    "accounts:signup": "page",
    "accounts:login": "page",
    "api:schema": "api",
}
# Routes whose callers are checked by the tests named here (writes, model operations, the sign-out).
COVERED_ELSEWHERE = {
    "cases:review": "webapp/test_reviews.py",
    "cases:delete": "webapp/test_case_delete.py",
    "reruns:rerun-new": "webapp/test_modelops_access.py",
    "reruns:rerun": "webapp/test_modelops_access.py",
    "guidance:review": "webapp/test_guidance.py",
    "accounts:logout": "webapp/test_audit.py",
    "api:token": "webapp/test_access_control.py",
    "api:guidance-review": "webapp/test_guidance.py",
    "metrics": "webapp/test_metrics.py",
    "healthz": "webapp/test_healthz.py",  # anyone: it shows no patient data
}
MODELOPS_PREFIXES = ("modelops:", "api:run-", "api:dataset-", "api:model-", "api:import-")
MODELOPS_EXTRA = {"api:rerun-detail"}


def _routes(resolver=None, namespace: str = ""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from _routes(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_route_has_its_row():
    listed = {
        **CASE,
        **LISTS,
        **CLINICAL_LISTS,
        **SIGNED_IN,
        **ADMIN_ONLY,
        **PUBLIC,
        **COVERED_ELSEWHERE,
    }
    missing = []
    for route in _routes():
        if route.startswith("admin:") or route in listed:
            continue
        if route.startswith(MODELOPS_PREFIXES) or route in MODELOPS_EXTRA:
            # test_modelops_access walks these itself (pages, API, every role)
            assert route.split(":")[1] in (TESTS / "webapp/test_modelops_access.py").read_text()
            continue
        missing.append(route)
    assert not missing, f"routes with no row in the access matrix: {missing}"
    for route, test_file in COVERED_ELSEWHERE.items():
        assert route.split(":")[-1] in (TESTS / test_file).read_text(), (route, test_file)


@pytest.fixture
def world(make_case, patient, other_patient, clinician, unassigned_clinician):
    """The patient's classified case with its heat map made, and every kind of caller."""
    case = make_case(patient, body_site="back")
    version = ModelVersionFactory(name="matrix", manifest={})
    probabilities = dict.fromkeys(("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"), 0.1)
    probabilities["nv"] = 0.4
    case_claim_for_classification(case_id=case.pk)
    case_record_predictions(
        model_version=version,
        answers={case.pk: answer_for(probabilities, latency_ms=3)},
    )
    key = store.case_heatmap_key(case.public_id, version.name)
    store.put(key, b"\x89PNG\r\n\x1a\n", what="a test overlay")
    HeatMap.objects.filter(prediction__case=case).update(
        status=HeatMapStatus.DONE, image_key=key, grid=[[1.0]]
    )
    return {
        "case": case,
        "users": {
            "patient": patient,
            "other_patient": other_patient,
            "clinician": clinician,
            "unassigned_clinician": unassigned_clinician,
            "admin": AdminFactory(),
        },
    }


def _url(route: str, case) -> str:
    if route in ("cases:lesion", "api:lesion-detail"):
        return reverse(route, kwargs={"public_id": case.lesion.public_id})
    if route == "guidance:diagnosis":
        return reverse(route, kwargs={"dx": "mel"})
    if route in CASE:
        return reverse(route, kwargs={"public_id": case.public_id})
    return reverse(route)


def _client(kind: str, user, login):
    if kind == "api":
        return api_client(user)
    return login(user)


def _accept(route: str) -> str:
    return {"api:case-image": "image/*", "api:case-heatmap": "image/*"}.get(route, "*/*")


def _get(route, kind, user, login, case):
    return _client(kind, user, login).get(_url(route, case), HTTP_ACCEPT=_accept(route))


# Every test below checks its route for every caller: the five users and an anonymous visitor.
# The counts go into the JUnit report that `python -m bench.reliability` reads.
CALLERS = len(EVERYONE) + 1


def _assert_anonymous_refused(route, kind, case):
    response = Client().get(_url(route, case))
    if kind == "page":
        assert response.status_code == 302, route
        assert reverse("accounts:login") in response["Location"]
    else:
        assert response.status_code == 401, (route, response.status_code)


@pytest.mark.parametrize("route", sorted(CASE))
def test_a_case_is_read_by_its_people_and_hidden_from_everyone_else(
    route, world, login, client, record_property
):
    case, users = world["case"], world["users"]
    kind = CASE[route]
    rows_before = AuditEvent.objects.count()
    for name in ALLOWED:
        response = _get(route, kind, users[name], login, case)
        assert response.status_code == 200, (route, name, response.status_code)
    missing = reverse(route, kwargs={"public_id": uuid.uuid4()})
    for name in OTHERS:
        response = _get(route, kind, users[name], login, case)
        assert response.status_code == 404, (route, name, response.status_code)
        again = _client(kind, users[name], login).get(missing, HTTP_ACCEPT=_accept(route))
        assert response.content == again.content, (
            "a hidden case must look exactly like a missing one"
        )
    _assert_anonymous_refused(route, kind, case)
    record_property("access_cells", CALLERS)
    if route in AUDITED_ROUTES:
        # Each request for patient data (answered or refused) left exactly one audit row.
        requests = len(ALLOWED) + 2 * len(OTHERS) + 1
        rows = AuditEvent.objects.count() - rows_before
        record_property("patient_data_requests", requests)
        record_property("audit_rows", rows)
        assert rows == requests, (route, requests, rows)


@pytest.mark.parametrize("route", sorted(LISTS) + sorted(CLINICAL_LISTS))
def test_lists_show_each_caller_only_the_cases_they_may_see(
    route, world, login, client, record_property
):
    case, users = world["case"], world["users"]
    kind = {**LISTS, **CLINICAL_LISTS}[route]
    marker = str(case.lesion.public_id if "lesion" in route else case.public_id)
    for name, user in users.items():
        response = _get(route, kind, user, login, case)
        if route in CLINICAL_LISTS and name in ("patient", "other_patient"):
            assert response.status_code == 403, (route, name, response.status_code)
            continue
        assert response.status_code == 200, (route, name, response.status_code)
        shown = marker in response.content.decode()
        assert shown == (name in ALLOWED), (route, name, "shown" if shown else "not shown")
    _assert_anonymous_refused(route, kind, case)
    record_property("access_cells", CALLERS)


@pytest.mark.parametrize("route", sorted(SIGNED_IN))
def test_pages_without_patient_data_need_only_a_sign_in(
    route, world, login, client, record_property
):
    for name, user in world["users"].items():
        response = _get(route, SIGNED_IN[route], user, login, world["case"])
        assert response.status_code == 200, (route, name, response.status_code)
    _assert_anonymous_refused(route, SIGNED_IN[route], world["case"])
    record_property("access_cells", CALLERS)


def test_the_audit_trail_is_for_admins_only(world, login, client, record_property):
    for name, user in world["users"].items():
        status = login(user).get(reverse("audit:trail")).status_code
        assert status == (200 if name == "admin" else 403), (name, status)
    _assert_anonymous_refused("audit:trail", "page", world["case"])
    record_property("access_cells", CALLERS)


@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_public_pages_answer_everyone(route, client):
    assert client.get(reverse(route)).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("name", [*EVERYONE, "anonymous"])
async def test_the_live_push_follows_the_same_matrix(name, world, record_property):
    record_property("access_cells", 1)
    case = world["case"]
    user = AnonymousUser() if name == "anonymous" else world["users"][name]
    comm = WebsocketCommunicator(CaseConsumer.as_asgi(), f"/ws/cases/{case.public_id}/")
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"public_id": case.public_id}}
    connected, code = await comm.connect()
    if name in ALLOWED:
        assert connected, name
        state = await comm.receive_json_from(timeout=5)
        assert state["id"] == str(case.public_id)
        await comm.disconnect()
    else:
        assert not connected
        assert code == (CLOSE_UNAUTHENTICATED if name == "anonymous" else CLOSE_NOT_FOUND)
