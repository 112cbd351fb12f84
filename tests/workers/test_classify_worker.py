"""A real Celery worker process classifies real photos end to end: S3 → model → rows, S3 JSON, push."""

import json
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ml.classes import CLASSES
from ml.referral import ReferralRule, decide
from tests.factories import UserFactory
from tests.processes import ROOT, service_env, start_worker, stop, wait_until
from webapp.cases.models import Case, CaseStatus, Prediction
from webapp.config.celery import CLASSIFY_TASK, app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _finished(count: int) -> bool:
    return Case.objects.filter(status=CaseStatus.DONE).count() >= count


def test_worker_classifies_uploaded_photos_once_each(
    client, upload_photos, active_tiny_model, tmp_path, s3_client, settings, broker_queue_length
):
    patient = UserFactory()
    client.force_login(patient)
    photos = list(upload_photos.values())[:4]
    for path in photos:
        response = client.post(
            reverse("cases:upload"),
            {"image": SimpleUploadedFile(path.name, path.read_bytes(), "image/jpeg")},
        )
        assert response.status_code == 302
    assert broker_queue_length() >= len(photos)

    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: _finished(len(photos)), 240, "all cases classified", log)

        rule = ReferralRule.from_manifest(active_tiny_model.manifest["decision_thresholds"])
        assert rule is not None  # train() chose one on the tiny validation split
        for case in Case.objects.select_related("prediction__model_version"):
            prediction = case.prediction
            assert set(prediction.probabilities) == set(CLASSES)
            assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
            assert prediction.model_version == active_tiny_model
            assert prediction.latency_ms > 0
            stored = json.loads(
                s3_client.get_object(Bucket=settings.S3_BUCKET, Key=prediction.result_key)[
                    "Body"
                ].read()
            )
            assert stored["case"] == str(case.public_id)
            assert stored["probabilities"] == pytest.approx(prediction.probabilities)
            # The decision follows the version's own recorded rule, photo by photo.
            expected = decide(prediction.probabilities, rule)
            assert prediction.decision == ("refer" if expected.refer else "routine")
            assert prediction.decision_reasons == list(expected.reasons)
            assert stored["refer"] is expected.refer

        # A redelivered job for a finished case does nothing.
        done = Case.objects.first()
        before = Prediction.objects.get(case=done)
        app.send_task(CLASSIFY_TASK, args=[done.pk], queue="inference")
        wait_until(lambda: broker_queue_length() == 0, 60, "the duplicate job consumed", log)
        wait_until(lambda: "already-finished" in log.read_text(), 30, "the duplicate job ran", log)
        assert Prediction.objects.filter(case=done).count() == 1
        assert Prediction.objects.get(case=done).created_at == before.created_at
        # The model was loaded once per worker child, not once per job.
        assert log.read_text().count("loaded model tiny-test") == 1
    finally:
        stop(worker)


def test_upload_without_active_model_waits_then_runs_after_activation(
    client, upload_photos, tiny_bundle, tmp_path
):
    from django.core.management import call_command

    patient = UserFactory()
    client.force_login(patient)
    path = next(iter(upload_photos.values()))
    client.post(
        reverse("cases:upload"),
        {"image": SimpleUploadedFile(path.name, path.read_bytes(), "image/jpeg")},
    )
    page = client.get(reverse("cases:history")).content.decode()
    assert "No model is active" in page

    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: "waiting-for-model" in log.read_text(), 120, "the wait", log)
        assert Case.objects.get().status == CaseStatus.QUEUED
        call_command("import_model", str(tiny_bundle), "--activate", "--name", "tiny-later")
        wait_until(lambda: _finished(1), 180, "the waiting case classified", log)
        assert Case.objects.get().prediction.model_version.name == "tiny-later"
    finally:
        stop(worker)


def test_import_model_refuses_a_tampered_bundle(tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    with (bundle / "model.keras").open("ab") as fh:
        fh.write(b"tampered")
    result = subprocess.run(
        [sys.executable, "manage.py", "import_model", str(bundle), "--activate"],
        capture_output=True,
        text=True,
        env=service_env(),
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "model.keras" in result.stderr
