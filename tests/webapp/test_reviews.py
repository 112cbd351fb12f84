"""Clinicians confirm or correct a diagnosis, on the page and through the API; reviews are kept, never overwritten."""

import pytest
from django.urls import reverse

from tests.webapp.test_access_control import api_client
from tests.webapp.test_lesions import BENIGN, classify
from webapp.cases.models import Review
from webapp.cases.selectors import confirmed_case_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def classified_case(make_case, patient):
    case = make_case(patient)
    classify(case, BENIGN)  # the model says nv
    return case


def test_an_assigned_clinician_corrects_then_confirms_and_both_reviews_are_kept(
    classified_case, clinician, patient
):
    url = reverse("api:case-reviews", args=[classified_case.public_id])
    client = api_client(clinician)
    first = client.post(url, {"diagnosis": "mel", "notes": "irregular border"}, format="json")
    second = client.post(url, {"diagnosis": "nv", "notes": "seen again: benign"}, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["agrees_with_model"] is False and second.json()["agrees_with_model"]

    listed = api_client(patient).get(url).json()  # the patient sees the reviews of their case
    assert [(r["diagnosis"], r["reviewer"]) for r in listed] == [
        ("nv", clinician.username),
        ("mel", clinician.username),
    ]
    assert Review.objects.count() == 2
    # The newest review is the case's label for the next training snapshot.
    items = {item["image_id"]: item["dx"] for item in confirmed_case_items()}
    assert items == {f"case-{classified_case.public_id}": "nv"}


def test_who_may_review(classified_case, patient, unassigned_clinician):
    url = reverse("api:case-reviews", args=[classified_case.public_id])
    own = api_client(patient).post(url, {"diagnosis": "nv"}, format="json")
    assert own.status_code == 403 and "clinicians" in own.json()["detail"]
    stranger = api_client(unassigned_clinician).post(url, {"diagnosis": "nv"}, format="json")
    assert stranger.status_code == 404
    assert Review.objects.count() == 0


def test_a_diagnosis_outside_the_seven_classes_is_refused(classified_case, clinician):
    url = reverse("api:case-reviews", args=[classified_case.public_id])
    response = api_client(clinician).post(url, {"diagnosis": "flu"}, format="json")
    assert response.status_code == 400 and "diagnosis" in response.json()
    assert Review.objects.count() == 0


def test_a_clinician_reviews_on_the_results_page(login, classified_case, clinician, patient):
    page_url = reverse("cases:results", args=[classified_case.public_id])
    client = login(clinician)
    assert 'id="review-form"' in client.get(page_url).content.decode()
    response = client.post(
        reverse("cases:review", args=[classified_case.public_id]),
        {"diagnosis": "bcc", "notes": "pearly edge"},
    )
    assert response.status_code == 302
    review = Review.objects.get()
    assert (review.diagnosis, review.notes, review.reviewer) == ("bcc", "pearly edge", clinician)
    html = login(patient).get(page_url).content.decode()
    assert "Basal cell carcinoma (bcc)" in html and "corrects the model (nv)" in html
    assert 'id="review-form"' not in html  # patients read reviews, they do not write them
