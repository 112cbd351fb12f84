"""One spot photographed over time: uploads join a lesion, and its page and API show the timeline."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import (
    AdminFactory,
    CareAssignmentFactory,
    ModelVersionFactory,
    PredictionFactory,
)
from tests.images import jpeg_bytes
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case, Lesion
from webapp.cases.serializers import lesion_visits
from webapp.modelops.models import ModelVersion

pytestmark = pytest.mark.django_db

BENIGN = {
    "akiec": 0.02,
    "bcc": 0.03,
    "bkl": 0.10,
    "df": 0.05,
    "mel": 0.05,
    "nv": 0.70,
    "vasc": 0.05,
}
WORSE = {"akiec": 0.05, "bcc": 0.05, "bkl": 0.05, "df": 0.02, "mel": 0.60, "nv": 0.20, "vasc": 0.03}


def photo(seed=0):
    return SimpleUploadedFile("a.jpg", jpeg_bytes(seed=seed), content_type="image/jpeg")


def classify(case, probabilities):
    version = ModelVersion.objects.filter(name="tiny-1").first() or ModelVersionFactory(
        name="tiny-1"
    )
    PredictionFactory(case=case, model_version=version, probabilities=probabilities)
    Case.objects.filter(pk=case.pk).update(status="done")


def test_a_patient_adds_a_second_photo_to_a_lesion_through_the_page(
    login, make_case, patient, django_capture_on_commit_callbacks
):
    first = make_case(patient, body_site="left forearm")
    client = login(patient)
    form = client.get(reverse("cases:upload"), {"lesion": first.lesion.public_id})
    assert "left forearm" in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("cases:upload"), {"image": photo(1), "lesion": first.lesion.public_id}
        )
    assert response.status_code == 302
    second = Case.objects.exclude(pk=first.pk).get()
    assert second.lesion_id == first.lesion_id and Lesion.objects.count() == 1


def test_a_clinician_adds_a_photo_to_an_assigned_patients_lesion_through_the_api(
    make_case, patient, clinician, django_capture_on_commit_callbacks
):
    lesion = make_case(patient).lesion
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(clinician).post(
            reverse("api:case-list"),
            {"image": photo(2), "lesion": str(lesion.public_id)},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["lesion"] == str(lesion.public_id)
    case = Case.objects.get(public_id=response.json()["id"])
    assert case.lesion == lesion and case.patient == patient and case.uploaded_by == clinician


def test_nobody_adds_photos_to_a_lesion_they_may_not_see(
    make_case, patient, other_patient, unassigned_clinician, bucket_keys
):
    lesion = make_case(patient).lesion
    before = bucket_keys()
    for user in (other_patient, unassigned_clinician):
        response = api_client(user).post(
            reverse("api:case-list"),
            {"image": photo(3), "lesion": str(lesion.public_id)},
            format="multipart",
        )
        assert response.status_code == 400
        assert "lesion" in response.json()
    assert Case.objects.count() == 1 and bucket_keys() == before


def test_a_lesion_and_a_different_patient_together_are_refused(make_case, patient, clinician):
    lesion = make_case(patient).lesion
    second = CareAssignmentFactory(clinician=clinician).patient
    response = api_client(clinician).post(
        reverse("api:case-list"),
        {"image": photo(4), "lesion": str(lesion.public_id), "patient": second.username},
        format="multipart",
    )
    assert response.status_code == 400
    assert "another patient" in response.json()["detail"]
    assert Case.objects.count() == 1


def test_the_timeline_says_what_changed_between_visits(make_case, patient):
    first = make_case(patient)
    second = make_case(patient, lesion=first.lesion)
    third = make_case(patient, lesion=first.lesion)  # still queued: no result yet
    fourth = make_case(patient, lesion=first.lesion)
    classify(first, BENIGN)
    classify(second, BENIGN)
    classify(fourth, WORSE)
    cases = list(Case.objects.filter(lesion=first.lesion).select_related("prediction"))

    visits = lesion_visits(cases)

    assert [v["case"] for v in visits] == [c.public_id for c in (first, second, third, fourth)]
    assert visits[0]["previous_top_class"] is None and visits[0]["malignant_change"] is None
    assert visits[1]["top_class_changed"] is False
    assert visits[1]["malignant_change"] == pytest.approx(0.0)
    assert visits[2]["top_class"] is None and visits[2]["status"] == "queued"
    # Compared with the last classified visit, not the queued one in between.
    assert visits[3]["previous_top_class"] == "nv" and visits[3]["top_class_changed"] is True
    assert visits[3]["malignant_probability"] == pytest.approx(0.70)
    assert visits[3]["malignant_change"] == pytest.approx(0.70 - 0.10)


def test_the_lesion_page_and_api_show_the_timeline_to_who_may_see_it(
    login, make_case, patient, clinician, other_patient, unassigned_clinician
):
    first = make_case(patient, body_site="back")
    second = make_case(patient, lesion=first.lesion)
    classify(first, BENIGN)
    classify(second, WORSE)
    lesion = first.lesion
    page_url = reverse("cases:lesion", args=[lesion.public_id])
    api_url = reverse("api:lesion-detail", args=[lesion.public_id])
    for user in (patient, clinician, AdminFactory()):
        page = login(user).get(page_url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Changed since the last photo: was nv" in html
        assert 'id="malignant-trend"' in html
        body = api_client(user).get(api_url).json()
        assert [v["top_class"] for v in body["visits"]] == ["nv", "mel"]
        assert body["patient"] == patient.username and body["body_site"] == "back"
    for user in (other_patient, unassigned_clinician):
        assert login(user).get(page_url).status_code == 404
        missing = api_client(user).get(reverse("api:lesion-detail", args=[uuid.uuid4()]))
        theirs = api_client(user).get(api_url)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()


def test_a_results_page_shows_its_lesions_timeline_with_itself_marked(login, make_case, patient):
    first = make_case(patient)
    second = make_case(patient, lesion=first.lesion)
    elsewhere = make_case(patient)  # another lesion of the same patient
    classify(first, BENIGN)
    classify(second, WORSE)

    html = login(patient).get(reverse("cases:results", args=[second.public_id])).content.decode()

    timeline = html[html.index('id="lesion-timeline"') :]
    assert 'id="malignant-trend"' in timeline
    assert str(first.public_id) in timeline and str(elsewhere.public_id) not in timeline
    assert timeline.count('aria-current="true"') == 1
    marked = timeline[timeline.index('aria-current="true"') :]
    assert str(second.public_id) in marked[: marked.index("</li>")]


def test_lesion_lists_are_scoped_to_the_caller(login, make_case, patient, other_patient):
    mine = make_case(patient).lesion
    make_case(patient, lesion=mine)
    theirs = make_case(other_patient).lesion
    listed = api_client(patient).get(reverse("api:lesion-list")).json()["results"]
    assert [(row["id"], row["visit_count"]) for row in listed] == [(str(mine.public_id), 2)]
    page = login(patient).get(reverse("cases:lesions")).content.decode()
    assert str(mine.public_id) in page and str(theirs.public_id) not in page
