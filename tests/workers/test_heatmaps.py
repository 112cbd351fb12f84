"""Heat maps: made after a result by the follow-up job with the prediction's own model, stored as an overlay
in S3, served with the case's access rules, asked for again when failed, never left behind a deleted case."""

import io

import pytest
from django.urls import reverse
from PIL import Image

from tests.factories import CareAssignmentFactory, ClinicianFactory, UserFactory
from tests.webapp.test_access_control import api_client
from webapp.audit.models import AuditEvent
from webapp.cases.models import Case, HeatMap, HeatMapStatus
from webapp.cases.services.deletion import case_delete
from webapp.cases.services.jobs import case_claim_for_classification
from workers import explain as explain_module
from workers.explain import explain_heatmap
from workers.inference import classify_cases
from workers.outcomes import JobOutcome, Outcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def classified(
    active_tiny_model, make_case, django_capture_on_commit_callbacks, broker_queue_length
):
    """A real case of an assigned patient, classified in this process by the tiny model."""
    assignment = CareAssignmentFactory()
    case = make_case(assignment.patient)
    before = broker_queue_length("explain")
    with django_capture_on_commit_callbacks(execute=True):
        case_claim_for_classification(case_id=case.pk)
        assert classify_cases([case.pk]) == {case.pk: JobOutcome(Outcome.DONE)}
    # The result went out first; its heat map waits on its own queue.
    assert broker_queue_length("explain") == before + 1
    case.refresh_from_db()
    return {"case": case, "patient": assignment.patient, "clinician": assignment.clinician}


def _heatmap(case: Case) -> HeatMap:
    return HeatMap.objects.get(prediction__case=case)


def test_the_follow_up_job_makes_and_stores_the_overlay(
    classified, bucket_keys, s3_client, settings
):
    case = classified["case"]
    heatmap = _heatmap(case)
    assert (heatmap.status, heatmap.target_class) == ("queued", case.prediction.top_class)

    assert explain_heatmap(heatmap_id=heatmap.pk) == "done"

    heatmap.refresh_from_db()
    assert heatmap.status == HeatMapStatus.DONE
    assert heatmap.layer == "dropout_64"  # the basic CNN's last spatial map
    assert len(heatmap.grid) > 1 and max(max(row) for row in heatmap.grid) == pytest.approx(1.0)
    body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=heatmap.image_key)["Body"].read()
    overlay = Image.open(io.BytesIO(body))
    assert overlay.mode == "RGBA"
    assert overlay.size == (case.image_width, case.image_height)
    # A redelivered job does nothing.
    assert explain_heatmap(heatmap_id=heatmap.pk) == "already-finished"


def test_the_overlay_is_served_to_those_who_may_see_the_case(classified):
    case = classified["case"]
    url = reverse("api:case-heatmap", kwargs={"public_id": case.public_id})
    patient = api_client(classified["patient"])
    assert patient.get(url).status_code == 404  # not made yet
    explain_heatmap(heatmap_id=_heatmap(case).pk)

    state = patient.get(reverse("api:case-detail", kwargs={"public_id": case.public_id})).json()
    assert state["prediction"]["heatmap"]["status"] == "done"
    assert state["prediction"]["heatmap"]["image_url"] == url
    for user in (classified["patient"], classified["clinician"]):
        response = api_client(user).get(url, HTTP_ACCEPT="image/png")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (
            case.image_width,
            case.image_height,
        )
    for stranger in (UserFactory(), ClinicianFactory()):
        assert api_client(stranger).get(url).status_code == 404
    actions = list(
        AuditEvent.objects.filter(route="api:case-heatmap").values_list("action", "outcome")
    )
    assert actions.count(("download-heatmap", "allowed")) == 2
    # The patient's early try (nothing made yet) and the two strangers' are refusals.
    assert actions.count(("download-heatmap", "denied")) == 3


def test_a_failed_heat_map_can_be_asked_for_again_by_a_clinician(classified):
    case = classified["case"]
    url = reverse("api:case-heatmap", kwargs={"public_id": case.public_id})
    heatmap = _heatmap(case)
    clinician = api_client(classified["clinician"])
    assert clinician.post(url).status_code == 409  # still being made

    HeatMap.objects.filter(pk=heatmap.pk).update(status=HeatMapStatus.FAILED, error="boom")
    assert api_client(classified["patient"]).post(url).status_code == 403
    response = clinician.post(url)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert explain_heatmap(heatmap_id=heatmap.pk) == "done"


def test_a_job_that_keeps_killing_its_worker_fails_with_a_reason(classified, settings):
    heatmap = _heatmap(classified["case"])
    HeatMap.objects.filter(pk=heatmap.pk).update(attempts=settings.CLASSIFY_MAX_ATTEMPTS)

    assert explain_heatmap(heatmap_id=heatmap.pk) == "failed"
    heatmap.refresh_from_db()
    assert heatmap.status == HeatMapStatus.FAILED
    assert "stopped its worker" in heatmap.error


def test_a_case_deleted_while_its_heat_map_is_made_leaves_nothing(
    classified, bucket_keys, monkeypatch, django_capture_on_commit_callbacks
):
    case = classified["case"]
    heatmap = _heatmap(case)
    made = explain_module.overlay_png

    def delete_meanwhile(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            case_delete(case=Case.objects.get(pk=case.pk), by=classified["patient"])
        return made(*args, **kwargs)

    monkeypatch.setattr(explain_module, "overlay_png", delete_meanwhile)
    assert explain_heatmap(heatmap_id=heatmap.pk) == "gone"
    assert not any(str(case.public_id) in key for key in bucket_keys("cases/"))


def test_deleting_a_case_deletes_its_heat_map(
    classified, bucket_keys, django_capture_on_commit_callbacks
):
    case = classified["case"]
    explain_heatmap(heatmap_id=_heatmap(case).pk)
    key = _heatmap(case).image_key
    assert key in bucket_keys("cases/")

    with django_capture_on_commit_callbacks(execute=True):
        case_delete(case=case, by=classified["patient"])
    assert key not in bucket_keys("cases/")
    assert not HeatMap.objects.exists()
