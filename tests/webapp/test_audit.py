"""Every read of patient data and every refused attempt leaves an append-only audit row; admins filter and export."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from tests.factories import AdminFactory
from tests.webapp.test_access_control import api_client
from webapp.audit.models import AuditEvent
from webapp.records import ImmutableRecord

pytestmark = pytest.mark.django_db


def events(**filters) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(**filters)
        .order_by("id")
        .values_list("actor_username", "action", "object_type", "object_id", "outcome")
    )


@pytest.fixture
def case(make_case, patient):
    return make_case(patient)


def test_reads_and_refusals_on_pages_api_and_photo_are_recorded(
    client, login, case, patient, other_patient, clinician
):
    case_id = str(case.public_id)
    login(patient).get(reverse("cases:results", args=[case.public_id]))
    api_client(clinician).get(reverse("api:case-image", args=[case.public_id]))
    api_client(clinician).get(reverse("api:case-list"))
    login(other_patient).get(reverse("cases:state", args=[case.public_id]))
    client.logout()
    client.get(reverse("cases:results", args=[case.public_id]))  # anonymous: sent to log in
    missing = uuid.uuid4()
    api_client(other_patient).get(reverse("api:case-detail", args=[missing]))

    assert events() == [
        (patient.username, "read", "case", case_id, "allowed"),
        (clinician.username, "download", "case", case_id, "allowed"),
        (clinician.username, "read", "case-list", "", "allowed"),
        (other_patient.username, "read", "case", case_id, "denied"),
        ("", "read", "case", case_id, "denied"),
        (other_patient.username, "read", "case", str(missing), "denied"),
    ]
    denied = AuditEvent.objects.filter(outcome="denied", actor_username=other_patient.username)
    assert {e.status_code for e in denied} == {404}


def test_uploads_reviews_and_admin_pages_are_recorded(login, case, clinician):
    api_client(clinician).post(
        reverse("api:case-reviews", args=[case.public_id]), {"diagnosis": "nv"}, format="json"
    )
    admin = AdminFactory(is_staff=True)
    login(admin).get(reverse("admin:cases_case_change", args=[case.pk]))
    assert (clinician.username, "review", "case", str(case.public_id), "allowed") in events()
    assert (admin.username, "admin-read", "case", str(case.pk), "allowed") in events()


def test_the_trail_is_append_only(login, case, patient):
    login(patient).get(reverse("cases:results", args=[case.public_id]))
    event = AuditEvent.objects.get()
    event.outcome = "denied"
    with pytest.raises(ImmutableRecord):
        event.save()
    with pytest.raises(ImmutableRecord):
        event.delete()
    assert AuditEvent.objects.get().outcome == "allowed"


def test_admins_filter_and_export_the_trail(login, case, patient, other_patient):
    login(patient).get(reverse("cases:results", args=[case.public_id]))
    login(other_patient).get(reverse("cases:results", args=[case.public_id]))
    admin = AdminFactory()
    page = login(admin).get(reverse("audit:trail"), {"outcome": "denied"}).content.decode()
    assert other_patient.username in page and f"<td>{patient.username}</td>" not in page
    exported = login(admin).get(
        reverse("audit:trail"), {"actor": patient.username, "format": "csv"}
    )
    assert exported["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0][:3] == ["at", "actor_username", "action"]
    assert [row[1] for row in rows[1:]] == [patient.username]
    assert login(patient).get(reverse("audit:trail")).status_code == 403
