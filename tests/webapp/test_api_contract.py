"""The API against its own OpenAPI schema: schemathesis generates requests for every operation
and checks every answer (status code, content type, headers, body) against the schema."""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.slow

# Loaded when the module is collected: schemathesis's lazy (fixture) schemas do not work with
# this pytest. Reading the schema touches no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def in_test_transaction(db):
    # As Django's test client does: the requests run inside the test's transaction, so the
    # connection must not be closed at the end of each.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(in_test_transaction):
    from rest_framework.authtoken.models import Token

    from tests.factories import AdminFactory

    return Token.objects.create(user=AdminFactory()).key


# Operations where a request the schema allows may still be refused with 400, and why: what
# they check is the content of a file or of the world, which no schema can state. Every other
# check still runs on them.
REFUSED_FOR_WHAT_A_SCHEMA_CANNOT_SAY = {
    "POST /api/auth/token/": "the username and password must match an account",
    "POST /api/cases/": "the photo must be a photo; the patient and lesion must exist",
    "POST /api/datasets/": "the folder or prefix must exist and hold HAM10000's layout",
    "GET /api/review-queue/": "'since' may not be after 'until'",
    "POST /api/model-imports/": "the files must be a model bundle or Keras files",
    "POST /api/models/{name}/reruns/": "the cases must exist and have photos",
    "POST /api/models/rollback/": "a model must be active, with one before it",
    "POST /api/training-runs/": "the dataset must be registered",
}


# The suite runs the same examples every time (a failure is reproducible, never a fluke of the
# draw); `python -m bench.reliability` runs many more, drawn afresh.
EXAMPLES = int(os.environ.get("API_CONTRACT_EXAMPLES", "25"))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize="API_CONTRACT_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_its_schema_says(case, admin_token):
    label = f"{case.operation.method.upper()} {case.operation.path}"
    excluded = [positive_data_acceptance] if label in REFUSED_FOR_WHAT_A_SCHEMA_CANNOT_SAY else []
    case.call_and_validate(
        headers={"Authorization": f"Token {admin_token}"}, excluded_checks=excluded
    )
