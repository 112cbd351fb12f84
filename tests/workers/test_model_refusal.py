"""A missing or tampered bundle is refused; the case waits for a usable model instead of failing."""

import re

import pytest

from tests.factories import ModelVersionFactory, UserFactory
from webapp.cases.models import CaseStatus
from webapp.modelops.models import ModelVersion
from webapp.modelops.services.registry import model_version_activate
from workers.model_cache import ModelUnavailable, get_predictor
from workers.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_case(db, django_capture_on_commit_callbacks):
    from tests.images import jpeg_bytes
    from webapp.cases.services.uploads import case_create
    from webapp.intake.imaging import normalize_image

    patient = UserFactory()
    image = normalize_image(jpeg_bytes(), max_bytes=10**7, max_pixels=10**7, max_side=512)
    with django_capture_on_commit_callbacks(execute=False):
        return case_create(uploaded_by=patient, patient=patient, image=image).case


def broken_version(**overrides) -> ModelVersion:
    fields = {"name": "broken", "bundle_key": "models/broken/missing.zip", "manifest": {}}
    version = ModelVersionFactory(**{**fields, **overrides})
    model_version_activate(version=version, reason="test: a broken bundle")
    return version


def test_missing_bundle_is_refused_with_its_key(queued_case):
    version = broken_version()
    with pytest.raises(ModelUnavailable, match=re.escape("models/broken/missing.zip")):
        get_predictor(version)


def test_bundle_with_wrong_hash_is_refused(queued_case, s3_client, settings):
    s3_client.put_object(Bucket=settings.S3_BUCKET, Key="models/broken/bad.zip", Body=b"not a zip")
    version = broken_version(bundle_key="models/broken/bad.zip")
    with pytest.raises(ModelUnavailable, match="registry expects"):
        get_predictor(version)


def test_job_with_unusable_model_leaves_the_case_queued(queued_case, settings):
    broken_version()
    # Retrying is the task's answer first; once retries are spent the case still waits.
    outcome = classify.apply(args=[queued_case.pk], retries=settings.CLASSIFY_MAX_RETRIES).get()
    queued_case.refresh_from_db()
    assert outcome == "waiting-for-model"
    assert queued_case.status == CaseStatus.QUEUED
    assert not hasattr(queued_case, "prediction")
