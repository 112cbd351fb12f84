"""Real Celery processes on real Redis and S3: an admin's run is trained by the training worker, judged,
promoted, served by the inference worker without a restart, rolled back; a killed training worker leaves
its run failed with a reason and nothing registered."""

import os
import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import TINY_RUN_OPTIONS
from tests.factories import UserFactory
from tests.processes import start_training_worker, start_worker, stop, wait_until
from webapp.cases.models import Case, CaseStatus
from webapp.modelops.models import ModelEvent, ModelStatus, ModelVersion, RunStatus, TrainingRun
from webapp.modelops.services.runs import training_run_create, training_runs_reap_stale

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _status(run) -> str:
    run.refresh_from_db()
    return run.status


def _upload(patient, photo) -> Case:
    api = APIClient()
    api.force_authenticate(patient)
    response = api.post(
        reverse("api:case-list"),
        {"image": SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg")},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return Case.objects.get(public_id=response.json()["id"])


def test_admin_trains_judges_promotes_and_rolls_back_while_workers_keep_serving(
    admin, registered_dataset, active_tiny_model, generated_photos, tmp_path, settings
):
    api = APIClient()
    api.force_authenticate(admin)
    response = api.post(
        reverse("api:run-list"),
        {"dataset": registered_dataset.name, "preset": "", "architecture": "basic_cnn",
         "options": {k: v for k, v in TINY_RUN_OPTIONS.items() if k != "architecture"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get(public_id=response.json()["id"])

    training_log, inference_log = tmp_path / "training.log", tmp_path / "inference.log"
    trainer = start_training_worker(training_log)
    server = start_worker(inference_log)
    patient = UserFactory()
    photos = iter(generated_photos.values())
    try:
        wait_until(lambda: _status(run) in {"succeeded", "failed"}, 240, "the run", training_log)
        assert run.status == RunStatus.SUCCEEDED, run.status_reason
        state = api.get(reverse("api:run-detail", args=[run.public_id])).json()
        assert state["progress"]["history"]["val_loss"] and state["device"].startswith("CPU")
        candidate = ModelVersion.objects.get(training_run=run)
        assert candidate.status == ModelStatus.CANDIDATE

        before = _upload(patient, next(photos))
        wait_until(lambda: _status(before) == CaseStatus.DONE, 180, "a case", inference_log)
        assert before.prediction.model_version == active_tiny_model

        # The judge refuses a candidate that is worse than the margin allows; a reason overrides it.
        settings.PROMOTION_MAX_DROP = -1.0
        promote = reverse("api:model-promote", args=[candidate.name])
        refused = api.post(promote, {}, format="json")
        assert refused.status_code == 409 and refused.json()["gate"]["passed"] is False
        assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == active_tiny_model
        promoted = api.post(promote, {"reason": "tiny test model"}, format="json")
        assert promoted.status_code == 200, promoted.content
        assert promoted.json()["previous"] == active_tiny_model.name

        # The running inference worker serves the new version, without a restart.
        after = _upload(patient, next(photos))
        wait_until(lambda: _status(after) == CaseStatus.DONE, 180, "a case", inference_log)
        assert after.prediction.model_version == candidate
        before.prediction.refresh_from_db()
        assert before.prediction.model_version == active_tiny_model

        rolled = api.post(reverse("api:model-rollback"), {"reason": "test"}, format="json")
        assert rolled.status_code == 200 and rolled.json()["version"] == active_tiny_model.name
        again = _upload(patient, next(photos))
        wait_until(lambda: _status(again) == CaseStatus.DONE, 180, "a case", inference_log)
        assert again.prediction.model_version == active_tiny_model
        assert list(ModelEvent.objects.values_list("action", flat=True)) == [
            "rollback",
            "promote",
            "activate",
        ]
        assert inference_log.read_text().count(f"loaded model {candidate.name}") == 1

        # Past cases re-run with the candidate: new answers beside, never instead of, their own.
        response = api.post(
            reverse("api:model-rerun", args=[candidate.name]),
            {"case_ids": [str(c.public_id) for c in (before, after, again)], "reason": "compare"},
            format="json",
        )
        assert response.status_code == 201, response.content
        report_url = reverse("api:rerun-detail", args=[response.json()["id"]])
        wait_until(lambda: api.get(report_url).json()["finished"], 120, "the re-run", inference_log)
        report = api.get(report_url).json()
        assert report["counts"]["done"] == 3
        assert {r["original_version"] for r in report["rows"]} == {
            active_tiny_model.name,
            candidate.name,
        }
        assert report["agreement"] is not None
        for case, version in (
            (before, active_tiny_model),
            (after, candidate),
            (again, active_tiny_model),
        ):
            case.prediction.refresh_from_db()
            assert case.prediction.model_version == version
    finally:
        stop(trainer)
        stop(server)


def _long_run(admin, dataset):
    return training_run_create(
        requested_by=admin, dataset=dataset, options={**TINY_RUN_OPTIONS, "head_epochs": 400}
    )


def _child_pids(parent: int) -> list[int]:
    children = []
    for task in os.listdir(f"/proc/{parent}/task"):
        with open(f"/proc/{parent}/task/{task}/children") as handle:
            children += [int(pid) for pid in handle.read().split()]
    return children


@pytest.mark.parametrize("what", ["child", "whole worker"])
def test_a_killed_training_worker_leaves_the_run_failed_and_nothing_registered(
    admin, registered_dataset, tmp_path, bucket_keys, what
):
    run = _long_run(admin, registered_dataset)
    log = tmp_path / "training.log"
    trainer = start_training_worker(log)
    try:
        wait_until(
            lambda: _status(run) == RunStatus.TRAINING and run.progress.get("epoch", 0) >= 2,
            180,
            "training under way",
            log,
        )
        if what == "child":
            # The pool process running the task: the worker's main process notices at once.
            os.kill(_child_pids(trainer.pid)[0], signal.SIGKILL)
        else:
            os.killpg(trainer.pid, signal.SIGKILL)
            trainer.wait(10)
            # Nobody is left on the worker's side: the reaper (Celery beat) finds the dead process.
            from workers.training import fail_runs_of_dead_processes

            assert fail_runs_of_dead_processes() == 1
        wait_until(lambda: _status(run) == RunStatus.FAILED, 60, "the run marked failed", log)
    finally:
        stop(trainer)
    assert "not restarted; nothing was registered" in run.status_reason
    assert not ModelVersion.objects.exists()
    assert not bucket_keys(f"models/basic_cnn-run{run.pk}-")
    # It stays failed: no worker ever picks it up again.
    assert training_runs_reap_stale() == {"failed": 0, "requeued": 0}


def test_a_running_run_is_cancelled_from_its_page(admin, registered_dataset, tmp_path, client):
    run = _long_run(admin, registered_dataset)
    log = tmp_path / "training.log"
    trainer = start_training_worker(log)
    client.force_login(admin)
    try:
        wait_until(
            lambda: run.progress.get("batch", 0) > 0 or _status(run) == "x", 180, "batches", log
        )
        response = client.post(reverse("modelops:run-cancel", args=[run.public_id]))
        assert response.status_code == 302
        wait_until(lambda: _status(run) == RunStatus.CANCELLED, 60, "the run cancelled", log)
    finally:
        stop(trainer)
    assert f"Cancelled by {admin.username}" in run.status_reason
    assert "after batch" in run.status_reason
    assert not ModelVersion.objects.exists()
