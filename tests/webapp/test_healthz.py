"""GET /healthz: ready while the database and Redis answer; says which one is down, nothing more."""

import json
import os
import subprocess
import sys

import pytest

from deploy.local_services import free_port

pytestmark = pytest.mark.django_db


def test_ready_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


def test_unready_when_redis_is_down_and_says_only_that(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "down"}
    assert "127.0.0.1" not in response.content.decode()


def test_only_read(client):
    assert client.post("/healthz").status_code == 405


def _production_redirect_settings() -> dict:
    env = {**os.environ, "SKINSIGHT_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50}
    env["DJANGO_SETTINGS_MODULE"] = "webapp.config.settings"
    code = (
        "from django.conf import settings as s; import json; "
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    redirect, exempt = json.loads(out.stdout)
    return {"SECURE_SSL_REDIRECT": redirect, "SECURE_REDIRECT_EXEMPT": exempt}


def test_exempt_from_the_https_redirect_that_pages_get(client, settings):
    # Probes call over plain HTTP inside the network; production redirects everything else.
    for name, value in _production_redirect_settings().items():
        setattr(settings, name, value)
    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/healthz").status_code == 200
