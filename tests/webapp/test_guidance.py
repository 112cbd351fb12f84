"""Guidance per diagnosis: versioned, proposed by one clinician and approved by another, shown with results."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from tests.factories import CareAssignmentFactory, ClinicianFactory
from tests.webapp.test_access_control import api_client
from tests.webapp.test_lesions import WORSE, classify
from webapp.cases.serializers import case_state
from webapp.guidance.models import GuidanceStatus, GuidanceVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shipped_guidance(db):
    """The table the data migration installs. A transactional test that ran before this one in the
    same session (pytest-xdist orders them as it likes) flushed it, so install it again here."""
    importlib.import_module("webapp.guidance.migrations.0002_initial_table").load(apps, None)


TEXTS = {
    "what_it_is": "A melanoma: a skin cancer of pigment cells.",
    "first_line": "Excision biopsy by a dermatologist.",
    "see_a_doctor": "Within two weeks.",
    "sources": "NICE NG14 https://www.nice.org.uk/guidance/ng14\nNHS melanoma page",
}


def test_every_diagnosis_ships_with_approved_guidance_shown_with_results(make_case, patient):
    assert set(GuidanceVersion.objects.filter(status="approved").values_list("dx", flat=True)) == {
        "akiec",
        "bcc",
        "bkl",
        "df",
        "mel",
        "nv",
        "vasc",
    }
    case = make_case(patient)
    classify(case, WORSE)  # top class mel
    case.refresh_from_db()
    guidance = case_state(case)["prediction"]["guidance"]
    assert guidance["dx"] == "mel" and guidance["version"] == 1
    assert "urgently" in guidance["see_a_doctor"] and guidance["source_lines"]


def test_a_draft_is_shown_only_after_a_second_clinician_approves_it(clinician):
    author, client = clinician, api_client(clinician)
    draft = client.post(reverse("api:guidance-list"), {"dx": "mel", **TEXTS}, format="json")
    assert draft.status_code == 201 and draft.json()["version"] == 2
    assert draft.json()["status"] == "draft"
    shown = {g["dx"]: g["version"] for g in client.get(reverse("api:guidance-list")).json()}
    assert shown["mel"] == 1

    review_url = reverse("api:guidance-review", args=[draft.json()["id"]])
    own = client.post(review_url, {"approve": True}, format="json")
    assert own.status_code == 403 and "not its author" in own.json()["detail"]

    second = api_client(ClinicianFactory())
    approved = second.post(review_url, {"approve": True, "note": "agreed"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["reviewed_by"] != author.username
    shown = {g["dx"]: g["version"] for g in client.get(reverse("api:guidance-list")).json()}
    assert shown["mel"] == 2
    old = GuidanceVersion.objects.get(dx="mel", version=1)
    assert old.status == GuidanceStatus.SUPERSEDED and "pigment cells" in old.what_it_is
    again = second.post(review_url, {"approve": False}, format="json")
    assert again.status_code == 409


def test_patients_do_not_write_guidance_and_bad_drafts_are_refused(patient, clinician):
    response = api_client(patient).post(
        reverse("api:guidance-list"), {"dx": "mel", **TEXTS}, format="json"
    )
    assert response.status_code == 403
    client = api_client(clinician)
    missing = client.post(
        reverse("api:guidance-list"), {"dx": "mel", **TEXTS, "first_line": " "}, format="json"
    )
    assert missing.status_code == 400
    unknown = client.post(reverse("api:guidance-list"), {"dx": "flu", **TEXTS}, format="json")
    assert unknown.status_code == 400
    assert GuidanceVersion.objects.filter(status="draft").count() == 0


def test_clinicians_propose_and_approve_on_the_pages(login, clinician, patient):
    page = reverse("guidance:diagnosis", args=["bcc"])
    response = login(clinician).post(page, TEXTS)
    assert response.status_code == 302
    draft = GuidanceVersion.objects.get(dx="bcc", status="draft")
    colleague = CareAssignmentFactory().clinician
    html = login(colleague).get(reverse("guidance:table")).content.decode()
    assert 'id="drafts"' in html and f"version {draft.version}" in html
    login(colleague).post(reverse("guidance:review", args=[draft.pk]), {"approve": "yes"})
    draft.refresh_from_db()
    assert draft.status == "approved" and draft.reviewed_by == colleague
    # Patients read the table but see no drafts and cannot propose.
    patient_view = login(patient).get(reverse("guidance:table")).content.decode()
    assert "Excision biopsy" in patient_view and 'id="drafts"' not in patient_view
    assert login(patient).post(page, TEXTS).status_code == 403
