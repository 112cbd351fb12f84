"""A patient deletes a case: the photo, results and rows go, the audit record of it stays."""

import pytest
from django.urls import reverse

from tests.webapp.test_access_control import api_client
from tests.webapp.test_lesions import BENIGN, classify
from webapp.audit.models import AuditEvent
from webapp.cases.models import Case, Lesion, Prediction, Review
from webapp.cases.services.reviews import review_create
from webapp.storage import store

pytestmark = pytest.mark.django_db(transaction=True)


def keys_of(case, bucket_keys) -> set[str]:
    results = store.case_results_prefix(case.public_id)
    return {k for k in bucket_keys() if k == case.image_key or k.startswith(results)}


@pytest.fixture
def reviewed_case(make_case, patient, clinician):
    case = make_case(patient)
    classify(case, BENIGN)
    store.put_json(store.case_result_key(case.public_id, "tiny-1"), {"x": 1}, what="a result")
    review_create(case=Case.objects.get(pk=case.pk), reviewer=clinician, diagnosis="nv")
    return case


def test_the_patient_deletes_a_case_through_the_api(reviewed_case, patient, bucket_keys):
    assert len(keys_of(reviewed_case, bucket_keys)) == 2  # the photo and its result JSON
    url = reverse("api:case-detail", args=[reviewed_case.public_id])
    response = api_client(patient).delete(url)
    assert response.status_code == 204
    assert not Case.objects.exists() and not Prediction.objects.exists()
    assert not Review.objects.exists() and not Lesion.objects.exists()
    assert keys_of(reviewed_case, bucket_keys) == set()
    assert api_client(patient).get(url).status_code == 404
    deleted = AuditEvent.objects.get(action="delete")
    assert (deleted.actor_username, deleted.object_id, deleted.outcome) == (
        patient.username,
        str(reviewed_case.public_id),
        "allowed",
    )


def test_others_cannot_delete_and_nothing_is_lost(
    reviewed_case, clinician, other_patient, bucket_keys
):
    url = reverse("api:case-detail", args=[reviewed_case.public_id])
    assert api_client(other_patient).delete(url).status_code == 404
    refused = api_client(clinician).delete(url)
    assert refused.status_code == 403 and "patient" in refused.json()["detail"]
    assert Case.objects.count() == 1 and len(keys_of(reviewed_case, bucket_keys)) == 2
    assert AuditEvent.objects.filter(action="delete", outcome="denied").count() == 2


def test_a_case_being_classified_is_not_deleted_under_its_worker(make_case, patient):
    case = make_case(patient)
    Case.objects.filter(pk=case.pk).update(status="running")
    response = api_client(patient).delete(reverse("api:case-detail", args=[case.public_id]))
    assert response.status_code == 409
    assert Case.objects.filter(pk=case.pk).exists()


def test_the_lesion_stays_while_it_has_other_photos_and_the_page_asks_first(
    login, make_case, patient
):
    first = make_case(patient)
    second = make_case(patient, lesion=first.lesion)
    client = login(patient)
    unconfirmed = client.post(reverse("cases:delete", args=[second.public_id]))
    assert unconfirmed.status_code == 302 and Case.objects.count() == 2
    client.post(reverse("cases:delete", args=[second.public_id]), {"confirm": "yes"})
    assert list(Case.objects.values_list("pk", flat=True)) == [first.pk]
    assert Lesion.objects.filter(pk=first.lesion_id).exists()


def test_a_refusal_on_the_page_is_audited_as_denied(login, reviewed_case, clinician):
    response = login(clinician).post(
        reverse("cases:delete", args=[reviewed_case.public_id]), {"confirm": "yes"}
    )
    assert response.status_code == 302 and Case.objects.filter(pk=reviewed_case.pk).exists()
    event = AuditEvent.objects.get(action="delete")
    assert (event.actor_username, event.outcome, event.status_code) == (
        clinician.username,
        "denied",
        403,
    )
