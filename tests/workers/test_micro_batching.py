"""Micro-batching: several jobs, one model call, and still every job its own outcome."""

import random
import subprocess

import numpy as np
import pytest
import redis
from django.conf import settings

from ml.predict import Predictor
from tests.factories import UserFactory
from tests.images import jpeg_bytes
from tests.processes import start_worker, stop, wait_until
from webapp.cases.models import Case, CaseStatus, Prediction
from webapp.cases.services.jobs import classify_enqueue
from webapp.cases.services.uploads import case_create
from webapp.intake.imaging import normalize_image
from webapp.storage import store
from webapp.storage.store import StorageUnavailable
from workers.inference import classify_cases
from workers.outcomes import Outcome

# The workers' logs are read for what they did: no job left by earlier tests may reach them.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_broker")]


def _cases(count: int) -> list[tuple[Case, bytes]]:
    """Queued cases with distinct photos, and no job in the broker yet (the test sends them)."""
    patient = UserFactory()
    made = []
    for seed in range(count):
        image = normalize_image(
            jpeg_bytes(120, 90, seed=seed), max_bytes=10**7, max_pixels=10**7, max_side=512
        )
        made.append(
            (case_create(uploaded_by=patient, patient=patient, image=image).case, image.content)
        )
    # Committed for real (other processes read these rows), so their jobs were sent: take them back.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("inference")
    return made


def test_a_batch_gives_each_case_its_own_answer_and_its_own_failure(
    active_tiny_model, tiny_bundle, s3_client
):
    cases = _cases(7)
    poisoned, _ = cases[2]
    s3_client.put_object(Bucket=settings.S3_BUCKET, Key=poisoned.image_key, Body=b"\xff\xd8junk")
    gone, _ = cases[5]
    s3_client.delete_object(Bucket=settings.S3_BUCKET, Key=gone.image_key)
    reference = Predictor.from_bundle(tiny_bundle)
    order = [case.pk for case, _ in cases]
    random.Random(4).shuffle(order)

    outcomes = classify_cases(order)

    assert outcomes[poisoned.pk].outcome == Outcome.REJECTED
    assert isinstance(
        outcomes[gone.pk].fault, StorageUnavailable
    )  # the task retries this one alone
    for case, photo in cases:
        case.refresh_from_db()
        if case.pk in (poisoned.pk, gone.pk):
            assert not Prediction.objects.filter(case=case).exists()
            continue
        assert outcomes[case.pk].outcome == Outcome.DONE
        expected = reference.predict_bytes([photo])[0]
        got = np.array([case.prediction.probabilities[c] for c in reference.class_names])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert case.prediction.engine == "onnxruntime-cpu"
    assert Case.objects.get(pk=poisoned.pk).status == CaseStatus.REJECTED
    assert Case.objects.get(pk=gone.pk).status == CaseStatus.RUNNING  # until its retry


def _done(count: int) -> bool:
    return Case.objects.filter(status=CaseStatus.DONE).count() >= count


@pytest.mark.slow
def test_a_worker_classifies_a_backlog_in_batches(active_tiny_model, tmp_path):
    cases = _cases(12)
    for case, _ in cases:
        classify_enqueue(case.pk)
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: _done(len(cases)), 180, "every case classified", log)
    finally:
        stop(worker)
    sizes = [
        int(line.split("jobs=")[1].split()[0])
        for line in log.read_text().splitlines()
        if " batch jobs=" in line
    ]
    assert sum(sizes) == len(cases)
    assert max(sizes) > 1  # some jobs shared a model call
    assert max(sizes) <= settings.INFERENCE_BATCH_SIZE
    assert Prediction.objects.count() == len(cases)
    assert "already-finished" not in log.read_text()  # no job was delivered twice


def _claimed(ids: list[int]) -> int:
    return Case.objects.filter(pk__in=ids, attempts__gte=1).count()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.slow
def test_a_batch_lost_with_its_worker_is_run_again_job_by_job(
    active_tiny_model, tmp_path, frozen_object_store
):
    cases = _cases(6)
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: "loaded model" in log.read_text(), 120, "the model warm", log)
        # The object store stops answering: the child hangs on its first photo, and the other
        # jobs gather behind it into one batch.
        frozen_object_store()
        for case, _ in cases:
            classify_enqueue(case.pk)
        ids = [case.pk for case, _ in cases]
        # The first job went to the idle child alone; the other five gathered behind it.
        for lost, expected_claims in ((1, 1), (2, len(cases))):
            wait_until(
                lambda n=expected_claims: _claimed(ids) >= n, 60, f"{expected_claims} claims", log
            )
            (child,) = _children(worker.pid)
            subprocess.run(["kill", "-9", str(child)], check=True)
            wait_until(
                lambda n=lost: log.read_text().count("was lost with its worker") >= n,
                60,
                f"loss {lost} noticed",
                log,
            )
        frozen_object_store(stop=False)
        wait_until(lambda: _done(len(cases)), 180, "every case classified", log)
    finally:
        frozen_object_store(stop=False)
        stop(worker)
    text = log.read_text()
    assert "a batch of 5 cases.classify job(s) was lost" in text
    assert Prediction.objects.count() == len(cases)
    # Sent again alone: each job of the lost batch ran in a batch of its own.
    assert text.count(" batch jobs=1 ") >= len(cases)


@pytest.mark.slow
def test_a_job_retried_after_a_transient_fault_finishes_and_the_retry_is_no_attempt(
    active_tiny_model, tmp_path, s3_client
):
    """The retry waits in the worker (its countdown) without stopping it, and releasing the
    claim keeps `attempts` for workers that died: the store down for minutes fails no photo."""
    ((case, photo),) = _cases(1)
    s3_client.delete_object(Bucket=settings.S3_BUCKET, Key=case.image_key)
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until(lambda: "loaded model" in log.read_text(), 120, "the model warm", log)
        classify_enqueue(case.pk)
        wait_until(lambda: "retrying in 5s" in log.read_text(), 60, "a retry", log)
        case.refresh_from_db()
        assert (case.status, case.attempts) == (CaseStatus.QUEUED, 0)
        s3_client.put_object(Bucket=settings.S3_BUCKET, Key=case.image_key, Body=photo)
        wait_until(lambda: _done(1), 60, "the retried job done", log)
    finally:
        stop(worker)
    case.refresh_from_db()
    assert case.attempts == 1
    assert "Unrecoverable error" not in log.read_text()


def test_a_result_object_that_cannot_be_written_fails_its_own_job_only(
    active_tiny_model, monkeypatch
):
    cases = [case for case, _ in _cases(3)]
    unlucky = cases[1]
    real_put = store.put

    def put(key, content, *, what):
        if str(unlucky.public_id) in key:
            raise StorageUnavailable(f"Could not store {what}: the object store is unreachable.")
        return real_put(key, content, what=what)

    monkeypatch.setattr(store, "put", put)
    outcomes = classify_cases([case.pk for case in cases])

    assert isinstance(
        outcomes[unlucky.pk].fault, StorageUnavailable
    )  # the task retries this one alone
    assert not Prediction.objects.filter(case=unlucky).exists()
    for case in (cases[0], cases[2]):
        assert outcomes[case.pk].outcome == Outcome.DONE
        result = store.read_json(case.prediction.result_key, what="the result")
        assert result["case"] == str(case.public_id)
