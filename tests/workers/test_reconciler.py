"""The reconciler sends again the jobs the broker lost or never took; an upload made while the broker is
down is accepted (its case saved and queued), never answered with an error after the commit."""

import datetime
import io

import pytest
import redis
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from tests.factories import AdminFactory, ModelVersionFactory, PredictionFactory, UserFactory
from tests.images import jpeg_bytes
from tests.webapp.test_access_control import api_client
from webapp.cases.models import Case, CaseStatus, HeatMap
from webapp.config.celery import app
from webapp.errors import Unavailable
from webapp.modelops.models import ModelImport
from webapp.modelops.services.registry import model_version_request_evaluation
from webapp.reconcile.reconciler import check_objects
from webapp.reruns.models import Rerun, RerunResult
from workers.tasks import reconcile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def leave_the_broker_empty():
    """These tests send jobs no worker will take; the tests after them expect empty queues."""
    yield
    _broker_forgets_everything()


@pytest.fixture
def patient(db):
    return UserFactory()


@pytest.fixture
def active_version(db):
    return ModelVersionFactory(name="reconcile-test", manifest={}, status="active")


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", refuse)
    return monkeypatch


def _broker_forgets_everything() -> None:
    """What a Redis restarted without its data leaves: no queued or unacknowledged messages."""
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()


def _age(case: Case, seconds: int, **fields) -> None:
    when = timezone.now() - datetime.timedelta(seconds=seconds)
    Case.objects.filter(pk=case.pk).update(created_at=when, **fields)


def test_an_upload_while_the_broker_is_down_is_accepted_and_sent_later(
    patient, broker_down, broker_queue_length, active_version, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    before = broker_queue_length()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(patient).post(
            reverse("api:case-list"),
            {"image": SimpleUploadedFile("a.jpg", jpeg_bytes(), "image/jpeg")},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    case = Case.objects.get()
    assert case.status == CaseStatus.QUEUED
    assert broker_queue_length() == before  # nothing was sent

    broker_down.undo()  # the broker is back
    settings.CASE_REQUEUE_AFTER = 60
    assert reconcile()["queued"] == 0  # too recent: its message may still be on its way
    _age(case, 120)
    assert reconcile()["queued"] == 1
    assert broker_queue_length() == before + 1
    assert reconcile()["queued"] == 0  # its job is in the broker now: not sent twice


def test_queued_cases_wait_without_a_message_while_no_model_is_active(
    make_case, patient, broker_queue_length
):
    case = make_case(patient)
    _age(case, 3600)
    _broker_forgets_everything()
    assert reconcile()["queued"] == 0
    assert broker_queue_length() == 0


def test_a_running_case_whose_worker_and_message_are_gone_is_sent_again(
    make_case, patient, broker_queue_length, active_version, settings
):
    settings.CLASSIFY_TIME_LIMIT = 60
    settings.CASE_REQUEUE_AFTER = 60
    lost, recent = make_case(patient), make_case(patient)
    _broker_forgets_everything()
    long_ago = timezone.now() - datetime.timedelta(seconds=600)
    _age(lost, 900, status=CaseStatus.RUNNING, started_at=long_ago)
    _age(recent, 900, status=CaseStatus.RUNNING, started_at=timezone.now())

    assert reconcile()["running"] == 1
    assert broker_queue_length() == 1
    assert reconcile()["running"] == 0


def test_a_heat_map_whose_message_was_lost_is_sent_again(
    make_case, patient, active_version, broker_queue_length, settings
):
    settings.CASE_REQUEUE_AFTER = 0
    case = make_case(patient)
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.DONE)
    prediction = PredictionFactory(
        case=case, model_version=active_version, probabilities={"nv": 1.0}, latency_ms=1
    )
    HeatMap.objects.create(prediction=prediction, target_class="nv")
    before = broker_queue_length("explain")

    assert reconcile()["heatmaps"] == 1
    assert broker_queue_length("explain") == before + 1
    assert reconcile()["heatmaps"] == 0


def test_the_object_check_names_rows_without_objects_and_objects_without_rows(
    make_case, patient, active_version, s3_client, settings, django_capture_on_commit_callbacks
):
    healthy, damaged = make_case(patient), make_case(patient)
    s3_client.delete_object(Bucket=settings.S3_BUCKET, Key=damaged.image_key)
    stray = "cases/images/left-by-a-failed-upload.jpg"
    s3_client.put_object(Bucket=settings.S3_BUCKET, Key=stray, Body=b"x")
    report = check_objects()

    assert report["cases_missing_photo"] == [str(damaged.public_id)]
    assert report["predictions_missing_result"] == report["heatmaps_missing_image"] == []
    # The bucket is shared with the rest of the session: other tests' leftovers may be listed too.
    assert stray in report["objects_of_no_case"]
    assert not any(str(healthy.public_id) in key for key in report["objects_of_no_case"])
    assert healthy.image_key not in report["objects_of_no_case"]

    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", "--check-objects", stdout=out)
    assert exited.value.code == 1
    assert "cases missing photo: 1" in out.getvalue()
    assert str(damaged.public_id) in out.getvalue()


def test_re_run_answers_and_imports_whose_jobs_were_lost_are_sent_again(
    make_case, patient, active_version, broker_queue_length, settings
):
    settings.CASE_REQUEUE_AFTER = 0
    case = make_case(patient)
    rerun = Rerun.objects.create(model_version=active_version, requested_by=patient)
    RerunResult.objects.create(rerun=rerun, case=case)
    ModelImport.objects.create(requested_by=patient, kind="bundle", uploads={})
    _broker_forgets_everything()

    sent = reconcile()
    assert (sent["reruns"], sent["imports"]) == (1, 1)
    assert broker_queue_length("training") == 1
    again = reconcile()
    assert (again["reruns"], again["imports"]) == (0, 0)


def test_an_evaluation_asked_for_while_the_broker_is_down_is_refused_with_503(
    broker_down, active_version, django_capture_on_commit_callbacks
):
    with (
        pytest.raises(Unavailable, match="nothing was started"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        model_version_request_evaluation(version=active_version, requested_by=AdminFactory())
