import pytest

from tests.factories import PASSWORD, CareAssignmentFactory, ClinicianFactory, UserFactory


@pytest.fixture
def patient(db):
    return UserFactory()


@pytest.fixture
def other_patient(db):
    return UserFactory()


@pytest.fixture
def clinician(db, patient):
    assignment = CareAssignmentFactory(patient=patient)
    return assignment.clinician


@pytest.fixture
def unassigned_clinician(db):
    return ClinicianFactory()


@pytest.fixture
def login(client):
    def as_user(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return as_user


@pytest.fixture
def make_case(db, django_capture_on_commit_callbacks):
    """Create a real case (object in S3, rows, job enqueued) through the service layer."""
    from tests.images import jpeg_bytes
    from webapp.cases.imaging import normalize_image
    from webapp.cases.services import case_create

    counter = iter(range(10_000))

    def make(patient, uploaded_by=None, **kwargs):
        image = normalize_image(
            jpeg_bytes(seed=next(counter)), max_bytes=10**7, max_pixels=10**7, max_side=2048
        )
        with django_capture_on_commit_callbacks(execute=True):
            return case_create(
                uploaded_by=uploaded_by or patient, patient=patient, image=image, **kwargs
            ).case

    return make
