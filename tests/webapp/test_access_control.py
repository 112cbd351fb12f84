"""Who may see which case: every page, API route, file URL and the live-push socket."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import PASSWORD, AdminFactory

pytestmark = pytest.mark.django_db

CASE_ROUTES = ["cases:results", "cases:state"]  # the photo: see the API image test below


@pytest.fixture
def case_of_patient(make_case, patient):
    return make_case(patient)


@pytest.mark.parametrize("route", CASE_ROUTES)
def test_owner_assigned_clinician_and_admin_may_read(
    route, login, case_of_patient, patient, clinician
):
    url = reverse(route, args=[case_of_patient.public_id])
    for user in (patient, clinician, AdminFactory()):
        assert login(user).get(url).status_code == 200, user.role


@pytest.mark.parametrize("route", CASE_ROUTES)
def test_others_get_the_same_404_as_for_a_missing_case(
    route, login, case_of_patient, other_patient, unassigned_clinician
):
    existing = reverse(route, args=[case_of_patient.public_id])
    missing = reverse(route, args=[uuid.uuid4()])
    for user in (other_patient, unassigned_clinician):
        client = login(user)
        a, b = client.get(existing), client.get(missing)
        assert a.status_code == b.status_code == 404
        assert a.content == b.content


@pytest.mark.parametrize("route", CASE_ROUTES)
def test_anonymous_is_sent_to_login(route, client, case_of_patient):
    response = client.get(reverse(route, args=[case_of_patient.public_id]))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_history_lists_only_visible_cases(login, make_case, patient, other_patient, clinician):
    mine = make_case(patient)
    theirs = make_case(other_patient)
    page = login(patient).get(reverse("cases:history")).content.decode()
    assert str(mine.public_id) in page and str(theirs.public_id) not in page
    page = login(clinician).get(reverse("cases:history")).content.decode()
    assert str(mine.public_id) in page and str(theirs.public_id) not in page


def api_client(user) -> APIClient:
    client = APIClient()
    token = client.post(
        reverse("api:token"), {"username": user.username, "password": PASSWORD}
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_api_list_and_detail_are_scoped_to_the_caller(make_case, patient, other_patient):
    mine, theirs = make_case(patient), make_case(other_patient)
    client = api_client(patient)
    listed = {row["id"] for row in client.get(reverse("api:case-list")).json()["results"]}
    assert listed == {str(mine.public_id)}
    assert client.get(reverse("api:case-detail", args=[mine.public_id])).status_code == 200
    other = client.get(reverse("api:case-detail", args=[theirs.public_id]))
    missing = client.get(reverse("api:case-detail", args=[uuid.uuid4()]))
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_api_refuses_anonymous_and_bad_tokens(case_of_patient):
    client = APIClient()
    assert client.get(reverse("api:case-list")).status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(reverse("api:case-list")).status_code == 401


def test_deactivated_users_token_stops_working(patient, case_of_patient):
    client = api_client(patient)
    assert client.get(reverse("api:case-list")).status_code == 200
    patient.is_active = False
    patient.save()
    assert client.get(reverse("api:case-list")).status_code == 401


def test_client_cannot_set_owner_status_or_role_through_the_api(patient, other_patient):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.images import jpeg_bytes
    from webapp.cases.models import Case

    client = api_client(patient)
    response = client.post(
        reverse("api:case-list"),
        {
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
            "patient": other_patient.username,
            "status": "done",
            "uploaded_by": other_patient.pk,
        },
        format="multipart",
    )
    # A patient cannot name another patient; nothing is created.
    assert response.status_code == 400
    assert Case.objects.count() == 0
    response = client.post(
        reverse("api:case-list"),
        {
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
            "status": "done",
        },
        format="multipart",
    )
    assert response.status_code == 201
    case = Case.objects.get()
    assert case.status == "queued" and case.uploaded_by == patient


def test_a_token_client_can_follow_the_image_url_it_is_given(
    case_of_patient, patient, clinician, other_patient, unassigned_clinician
):
    image_url = (
        api_client(patient)
        .get(reverse("api:case-detail", args=[case_of_patient.public_id]))
        .json()["image_url"]
    )
    for user in (patient, clinician, AdminFactory()):
        for accept in ("*/*", "image/*"):
            response = api_client(user).get(image_url, HTTP_ACCEPT=accept)
            assert response.status_code == 200, (user.role, accept)
            assert response["Content-Type"] == "image/jpeg"
            assert response.content[:3] == b"\xff\xd8\xff"
    missing = reverse("api:case-image", args=[uuid.uuid4()])
    for user in (other_patient, unassigned_clinician):
        client = api_client(user)
        theirs, nothing = client.get(image_url), client.get(missing)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.content == nothing.content
    assert APIClient().get(image_url).status_code == 401
