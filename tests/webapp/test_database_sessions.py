"""A session left idle inside a transaction (its host cut off mid-job) is ended by PostgreSQL, so the
row locks it held do not stop every other worker's claim of those cases."""

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_server_ends_sessions_idle_in_a_transaction():
    if connection.vendor != "postgresql":
        pytest.skip("the timeout is PostgreSQL's; SQLite has no sessions to end")
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::int FROM pg_settings WHERE name = %s",
                       ["idle_in_transaction_session_timeout"])  # fmt: skip
        (milliseconds,) = cursor.fetchone()
    assert milliseconds == settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT * 1000 > 0
