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
