"""A training run executed by the worker's service, in this process: data frozen, progress recorded,
candidate judged and registered; bad data, cancellation and a demoted admin end it with a reason."""

import csv
import hashlib
import json
import shutil
import uuid

import pytest

from tests.conftest import TINY_RUN_OPTIONS
from tests.factories import AdminFactory
from webapp.modelops.models import (
    DatasetSnapshot,
    EvaluationSet,
    ModelEvaluation,
    ModelStatus,
    ModelVersion,
    RunStatus,
)
from webapp.modelops.services.common import ModelOpsError
from webapp.modelops.services.datasets import dataset_register
from webapp.modelops.services.runs import training_run_create
from webapp.records import ImmutableRecord
from workers import training
from workers.outcomes import Outcome

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run(admin, dataset, **options):
    return training_run_create(
        requested_by=admin, dataset=dataset, options={**TINY_RUN_OPTIONS, **options}
    )


def test_run_freezes_data_trains_judges_and_registers_a_candidate(
    admin, registered_dataset, active_tiny_model, bucket_keys, s3_client, settings
):
    run = _run(admin, registered_dataset)
    assert training.train_run(run_id=run.pk) == Outcome.SUCCEEDED
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.status_reason
    assert "CPU" in run.device

    # The data was frozen: snapshot and evaluation set in S3, disjoint by lesion and by image.
    snapshot = run.snapshot
    evaluation_set = EvaluationSet.objects.get()
    assert snapshot.evaluation_set == evaluation_set
    frozen = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=snapshot.key)["Body"].read()
    )
    held_out = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=evaluation_set.key)["Body"].read()
    )
    assert frozen["evaluation_set"] == evaluation_set.sha256
    assert len(frozen["items"]) == snapshot.image_count
    assert snapshot.image_count + evaluation_set.image_count == 84
    assert not {i["lesion_id"] for i in frozen["items"]} & {
        i["lesion_id"] for i in held_out["items"]
    }
    assert not {i["sha256"] for i in frozen["items"]} & {i["sha256"] for i in held_out["items"]}

    # Progress: the plan, every epoch, batch losses, and the stages as messages.
    progress = run.progress
    assert [p["name"] for p in progress["phases"]] == ["full"]
    assert len(progress["history"]["val_loss"]) == 2
    assert progress["batches"] and progress["epoch"] == 2
    assert any("froze snapshot" in line for line in progress["messages"])

    # Registered with its lineage and judged on the frozen set, beside the active model.
    version = ModelVersion.objects.get(training_run=run)
    assert version.status == ModelStatus.CANDIDATE
    assert version.snapshot == snapshot
    assert version.parent == active_tiny_model
    assert version.created_by == admin
    candidate_eval = ModelEvaluation.objects.get(model_version=version)
    assert candidate_eval.evaluation_set == evaluation_set
    assert candidate_eval.seen_in_training == 0
    assert candidate_eval.metrics["n"] == evaluation_set.image_count
    assert ModelEvaluation.objects.filter(model_version=active_tiny_model).exists()
    assert "balanced accuracy" in run.status_reason

    # Log, curves and evaluation plots went to S3.
    keys = bucket_keys()
    assert run.artefacts["log"] in keys
    assert run.artefacts["curves"] in keys
    assert set(candidate_eval.artefacts.values()) <= keys
    log = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=run.artefacts["log"])["Body"].read()
    assert b"full epoch 2" in log


def test_a_run_is_judged_on_photos_from_other_sources_too_and_never_trains_on_them(
    admin,
    registered_dataset,
    active_tiny_model,
    training_dataset_dir,
    tmp_path,
    s3_client,
    settings,
):
    from tests.ml.synthetic import write_tiny_dataset
    from webapp.modelops.services.external_sets import external_set_register

    elsewhere = write_tiny_dataset(tmp_path / "elsewhere", per_class=3, seed=23, layout="snapshot")
    # One of the training dataset's own images turns up among the photos from elsewhere too.
    shared = next(training_dataset_dir.rglob("*.jpg"))
    shutil.copy(shared, elsewhere / "images" / "shared.jpg")
    with open(elsewhere / "labels.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["images/shared.jpg", "nv", "elsewhere-shared"])
    external = external_set_register(name="clinic-b", folder=elsewhere)

    run = _run(admin, registered_dataset)
    assert training.train_run(run_id=run.pk) == Outcome.SUCCEEDED
    run.refresh_from_db()
    held_out = EvaluationSet.objects.get(kind="held_out")
    frozen = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=run.snapshot.key)["Body"].read()
    )
    shared_hash = hashlib.sha256(shared.read_bytes()).hexdigest()
    in_held_out = shared_hash in {
        i["sha256"]
        for i in json.loads(
            s3_client.get_object(Bucket=settings.S3_BUCKET, Key=held_out.key)["Body"].read()
        )["items"]
    }
    assert shared_hash not in {i["sha256"] for i in frozen["items"]}
    assert run.snapshot.image_count + held_out.image_count == 84 - (0 if in_held_out else 1)
    assert frozen["external_sets_left_out"] == [external.sha256]

    # The candidate and the active model both have numbers on both sets, the external set first.
    version = ModelVersion.objects.get(training_run=run)
    for judged in (version, active_tiny_model):
        sets = {e.evaluation_set.kind: e for e in judged.evaluations.all()}
        assert set(sets) == {"external", "held_out"}
        assert sets["external"].metrics["n"] == 22
    assert run.status_reason.index("photos from other sources") < run.status_reason.index(
        "On the evaluation set"
    )
    # Training measured them too (the referral threshold is chosen on them when validation allows:
    # tests/ml/test_referral.py), and recorded their numbers in the bundle.
    assert any("22 external photos to measure on" in m for m in run.progress["messages"])
    assert version.metrics["external"]["n"] == 22


def test_two_runs_requested_together_are_two_runs_with_two_bundles(admin, registered_dataset):
    other_admin = AdminFactory()
    first = _run(admin, registered_dataset)
    second = _run(other_admin, registered_dataset)
    assert first.pk != second.pk
    for run in (first, second):
        assert training.train_run(run_id=run.pk) == Outcome.SUCCEEDED
    names = set(ModelVersion.objects.values_list("name", flat=True))
    assert len(names) == 2
    # The same data gives the same snapshot; a delivered-again message runs nothing.
    assert DatasetSnapshot.objects.count() == 1
    assert training.train_run(run_id=first.pk) == Outcome.NOT_QUEUED
    assert ModelVersion.objects.count() == 2


def test_a_repeat_trains_on_the_same_snapshot_and_refuses_changed_images(
    admin, registered_dataset, training_dataset_dir, tmp_path, settings, s3_client
):
    from webapp.modelops.services.runs import training_run_repeat

    first = _run(admin, registered_dataset)
    training.train_run(run_id=first.pk)
    first.refresh_from_db()
    repeat = training_run_repeat(run=first, requested_by=admin)
    assert repeat.snapshot == first.snapshot
    assert training.train_run(run_id=repeat.pk) == Outcome.SUCCEEDED

    # The same snapshot on a worker that must read the images again, one of which has changed.
    copy = shutil.copytree(training_dataset_dir, tmp_path / "copy")
    moved = dataset_register(
        name="tiny-copy", location_kind="folder", location=str(copy), created_by=admin
    )
    settings.TRAINING_WORK_DIR = tmp_path / "fresh-worker"
    first.dataset = moved
    first.save(update_fields=["dataset"])
    frozen = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=first.snapshot.key)["Body"].read()
    )
    victim = copy / frozen["items"][5]["path"]
    victim.write_bytes(victim.read_bytes()[:-40] + b"\0" * 40)
    again = training_run_repeat(run=first, requested_by=admin)
    assert training.train_run(run_id=again.pk) == Outcome.FAILED
    again.refresh_from_db()
    assert "changed since the data was frozen" in again.status_reason


def test_bad_data_stops_the_run_before_training_with_every_problem_named(
    admin, training_dataset_dir, tmp_path
):
    root = shutil.copytree(training_dataset_dir, tmp_path / "bad")
    metadata = root / "HAM10000_metadata.csv"
    rows = list(csv.reader(metadata.open()))
    rows[3][2] = "melanomaa"  # unknown label, row 4
    metadata.write_text("\n".join(",".join(r) for r in rows) + "\n")
    next(root.rglob("ISIC_9000005.jpg")).unlink()  # missing file
    next(root.rglob("ISIC_9000007.jpg")).write_bytes(b"\xff\xd8\xff not really a jpeg")
    dataset = dataset_register(
        name="broken", location_kind="folder", location=str(root), created_by=admin
    )
    run = _run(admin, dataset)
    assert training.train_run(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    kinds = {(p["kind"], p["where"]) for p in run.problems}
    assert ("unknown_label", "HAM10000_metadata.csv row 4") in kinds
    assert any(kind == "missing_file" and "row" in where for kind, where in kinds)
    assert any(
        kind == "corrupt_image" and where.endswith("ISIC_9000007.jpg") for kind, where in kinds
    )
    assert "3 problem(s)" in run.status_reason
    assert run.progress.get("phases") == []  # never trained
    assert not ModelVersion.objects.exists()


def test_a_class_with_too_few_images_stops_the_run(admin, registered_dataset, settings):
    settings.TRAINING_MIN_IMAGES_PER_CLASS = 50
    run = _run(admin, registered_dataset)
    assert training.train_run(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    assert {p["kind"] for p in run.problems} == {"too_few_images"}
    assert len(run.problems) == 7
    assert "at least 50" in run.problems[0]["detail"]


def test_the_worker_asks_again_whether_the_requester_is_an_admin(admin, registered_dataset):
    run = _run(admin, registered_dataset)
    admin.role = "patient"
    admin.is_superuser = False
    admin.save()
    assert training.train_run(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    assert "not (or no longer) an active administrator" in run.status_reason
    assert run.snapshot is None


def test_a_cancel_request_stops_the_run_at_the_next_batch(admin, registered_dataset, monkeypatch):
    from webapp.modelops.services.runs import training_run_cancel

    run = _run(admin, registered_dataset, head_epochs=50)
    original = training.RunObserver.batch_end

    def cancel_at_epoch_two(self, phase, epoch, batch, logs):
        original(self, phase, epoch, batch, logs)
        if epoch == 2 and batch == 3:
            training_run_cancel(run=run, requested_by=admin)
            self.heartbeat.cancel_requested.wait(10)  # the heartbeat thread notices

    monkeypatch.setattr(training.RunObserver, "batch_end", cancel_at_epoch_two)
    assert training.train_run(run_id=run.pk) == Outcome.CANCELLED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert f"Cancelled by {admin.username}" in run.status_reason
    assert "epoch 2, after batch" in run.status_reason
    assert run.progress["epoch"] == 2
    assert not ModelVersion.objects.exists()


def test_confirmed_cases_join_the_snapshot_with_their_newest_diagnosis(
    admin, registered_dataset, s3_client, settings, django_capture_on_commit_callbacks
):
    from tests.factories import CareAssignmentFactory, ClinicianFactory
    from tests.images import jpeg_bytes
    from webapp.cases.services.reviews import review_create
    from webapp.cases.services.uploads import case_create
    from webapp.errors import NotPermitted
    from webapp.intake.imaging import normalize_image

    assignment = CareAssignmentFactory()
    clinician, patient = assignment.clinician, assignment.patient
    cases = []
    for seed in range(3):
        image = normalize_image(
            jpeg_bytes(seed=seed), max_bytes=10**7, max_pixels=10**7, max_side=512
        )
        with django_capture_on_commit_callbacks(execute=False):
            cases.append(case_create(uploaded_by=patient, patient=patient, image=image).case)
    reviewed, corrected, unreviewed = cases
    review_create(case=reviewed, reviewer=clinician, diagnosis="bkl")
    first_look = review_create(
        case=corrected, reviewer=clinician, diagnosis="mel", notes="first look"
    )
    first_look.diagnosis = "nv"
    with pytest.raises(ImmutableRecord):
        first_look.save()
    review_create(case=corrected, reviewer=admin, diagnosis="nv", notes="histology: naevus")
    with pytest.raises(NotPermitted):
        review_create(case=unreviewed, reviewer=ClinicianFactory(), diagnosis="df")

    run = training_run_create(
        requested_by=admin,
        dataset=registered_dataset,
        options=TINY_RUN_OPTIONS,
        include_confirmed_cases=True,
    )
    assert training.train_run(run_id=run.pk) == Outcome.SUCCEEDED, run.status_reason
    run.refresh_from_db()
    frozen = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=run.snapshot.key)["Body"].read()
    )
    from_cases = {i["image_id"]: i["dx"] for i in frozen["items"] if i["source"] == "case"}
    assert from_cases == {f"case-{reviewed.public_id}": "bkl", f"case-{corrected.public_id}": "nv"}
    assert run.snapshot.confirmed_case_count == 2
    # Earlier reviews are kept, not overwritten.
    assert list(corrected.reviews.values_list("diagnosis", flat=True)) == ["nv", "mel"]


def test_a_dataset_under_an_s3_prefix_trains_like_a_folder(
    admin, training_dataset_dir, s3_client, settings
):
    prefix = f"datasets/uploaded/{uuid.uuid4().hex}/ham"
    for path in training_dataset_dir.rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(training_dataset_dir).as_posix()}"
            s3_client.put_object(Bucket=settings.S3_BUCKET, Key=key, Body=path.read_bytes())
    with pytest.raises(ModelOpsError, match="not in the HAM10000 layout"):
        dataset_register(
            name="nowhere", location_kind="s3", location="datasets/none", created_by=admin
        )
    dataset = dataset_register(name="in-s3", location_kind="s3", location=prefix, created_by=admin)
    run = _run(admin, dataset)
    assert training.train_run(run_id=run.pk) == Outcome.SUCCEEDED
    run.refresh_from_db()
    assert any(f"s3 prefix {prefix}" in line for line in run.progress["messages"])
    assert run.snapshot.image_count + run.snapshot.evaluation_set.image_count == 84
