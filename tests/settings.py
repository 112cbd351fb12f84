"""Test settings: the real services of this machine, or local ones the test session starts itself.

Runs before Django reads its settings, so it only decides addresses; tests/conftest.py starts the servers.
"""

import os
import socket

from deploy.local_services import free_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


if "DATABASE_URL" not in os.environ and _listening(5432):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"

# Redis: this machine's server (its own database number), else a Valkey the session starts.
if "REDIS_URL" not in os.environ:
    if _listening(6379):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/13"
    else:
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        os.environ["SKINSIGHT_TEST_START_REDIS"] = "1"

if "S3_ENDPOINT_URL" not in os.environ:
    os.environ["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    os.environ["S3_BUCKET"] = "skinsight-test"
    os.environ["SKINSIGHT_TEST_START_S3"] = "1"

# Tiny datasets and quick heartbeats for the training tests (workers inherit these).
os.environ.setdefault("TRAINING_MIN_IMAGES_PER_CLASS", "3")
os.environ.setdefault("TRAINING_HEARTBEAT_SECONDS", "1")

os.environ.setdefault(
    "SKINSIGHT_VAR_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "skinsight-test-var")
)

from webapp.config.settings import *  # noqa: E402, F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
