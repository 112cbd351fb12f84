"""The clinician's review queue: only their patients, unreviewed and referred first, filters and counts."""

import datetime

import pytest
from django.urls import reverse

from tests.factories import AdminFactory
from tests.webapp.test_access_control import api_client
from tests.webapp.test_lesions import BENIGN, WORSE, classify
from webapp.cases.models import Case, Lesion, Prediction
from webapp.cases.services.reviews import review_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue_cases(make_case, patient, other_patient, clinician):
    """Five cases of the clinician's patient and one of another patient's."""
    reviewed_refer, routine, refer, waiting, reviewed_routine = (
        make_case(patient) for _ in range(5)
    )
    for case, probabilities, decision in (
        (reviewed_refer, WORSE, "refer"),
        (routine, BENIGN, "routine"),
        (refer, WORSE, "refer"),
        (reviewed_routine, BENIGN, "routine"),
    ):
        classify(case, probabilities)
        Prediction.objects.filter(case=case).update(decision=decision)
    for case in (reviewed_refer, reviewed_routine):
        review_create(case=Case.objects.get(pk=case.pk), reviewer=clinician, diagnosis="nv")
    make_case(other_patient)
    return {
        "reviewed_refer": reviewed_refer,
        "routine": routine,
        "refer": refer,
        "waiting": waiting,
        "reviewed_routine": reviewed_routine,
    }


def ids(cases) -> list[str]:
    return [str(case.public_id) for case in cases]


def listed(client, **params):
    response = client.get(reverse("api:review-queue"), params)
    assert response.status_code == 200, response.json()
    body = response.json()
    return [row["id"] for row in body["results"]], body["counts"]


def test_unreviewed_referred_cases_come_first_with_counts(queue_cases, clinician):
    rows, counts = listed(api_client(clinician))
    q = queue_cases
    # Unreviewed before reviewed; within each, referred before the rest; then newest first.
    assert rows == ids(
        [q["refer"], q["waiting"], q["routine"], q["reviewed_refer"], q["reviewed_routine"]]
    )
    assert counts == {"total": 5, "unreviewed": 3, "unreviewed_referred": 1}


def test_filters_narrow_the_queue(queue_cases, clinician, patient):
    client, q = api_client(clinician), queue_cases
    assert listed(client, reviewed="no", refer="yes")[0] == ids([q["refer"]])
    assert listed(client, reviewed="yes")[0] == ids([q["reviewed_refer"], q["reviewed_routine"]])
    assert listed(client, top_class="mel")[0] == ids([q["refer"], q["reviewed_refer"]])
    assert len(listed(client, patient=patient.username[2:6])[0]) == 5
    assert listed(client, patient="nobody-by-that-name")[0] == []
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    assert listed(client, since=tomorrow.isoformat())[0] == []
    bad = client.get(reverse("api:review-queue"), {"since": "2026-12-02", "until": "2026-12-01"})
    assert bad.status_code == 400
    assert client.get(reverse("api:review-queue"), {"top_class": "flu"}).status_code == 400


def test_who_sees_the_queue(login, queue_cases, patient, unassigned_clinician):
    assert api_client(patient).get(reverse("api:review-queue")).status_code == 403
    assert login(patient).get(reverse("cases:queue")).status_code == 403
    assert listed(api_client(unassigned_clinician))[0] == []
    rows, counts = listed(api_client(AdminFactory()))
    assert counts["total"] == 6 and len(rows) == 6


def test_the_queue_page_keeps_its_filters_across_pages(login, make_case, patient, clinician):
    for _ in range(27):
        make_case(patient)
    page = login(clinician).get(reverse("cases:queue"), {"reviewed": "no"}).content.decode()
    assert "<strong>27</strong> of 27 cases wait for a" in page
    assert 'href="?reviewed=no&amp;page=2"' in page


def test_a_bad_filter_on_the_page_is_a_400_naming_it(login, clinician):
    response = login(clinician).get(
        reverse("cases:queue"), {"since": "2026-12-02", "until": "2026-12-01"}
    )
    assert response.status_code == 400
    assert "&#x27;From&#x27; is after &#x27;To&#x27;." in response.content.decode()


def test_search_finds_words_in_sites_labels_notes_and_ids_without_inflating_counts(
    queue_cases, clinician, other_patient
):
    q = queue_cases
    Lesion.objects.filter(pk=q["routine"].lesion_id).update(
        body_site="left forearm", label="Mole since childhood"
    )
    for _ in range(2):  # two reviews mentioning the same word: still one row, one count
        review_create(
            case=Case.objects.get(pk=q["refer"].pk),
            reviewer=clinician,
            diagnosis="mel",
            notes="Asymmetric border, excise",
        )
    client = api_client(clinician)

    assert listed(client, q="FOREARM")[0] == ids([q["routine"]])
    assert listed(client, q="mole childhood")[0] == ids([q["routine"]])  # every word must match
    assert listed(client, q="mole excise")[0] == []
    rows, counts = listed(client, q="excise")
    assert rows == ids([q["refer"]])
    assert counts == {"total": 1, "unreviewed": 0, "unreviewed_referred": 0}
    assert listed(client, q=str(q["waiting"].public_id)[:8])[0] == ids([q["waiting"]])
    # A search never reaches past the clinician's own patients.
    assert listed(client, q=other_patient.username)[0] == []
