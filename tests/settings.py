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


# Under pytest-xdist every worker is a test session of its own: its own Redis database, S3 server and var
# folder (pytest-django gives it its own test database). What the controlling process decided reaches the
# workers through the environment; a worker decides again. Processes a test starts inherit their session's
# choices with its worker name, and keep them.
SESSION = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... or "" when not distributed
_DECIDED = "SKINSIGHT_TEST_DECIDED"
if os.environ.get(f"{_DECIDED}_FOR", SESSION) != SESSION:
    for name in os.environ.pop(_DECIDED, "").split(","):
        os.environ.pop(name, None)
os.environ[f"{_DECIDED}_FOR"] = SESSION
_decided: list[str] = os.environ.get(_DECIDED, "").split(",")


def _decide(name: str, value: str) -> None:
    if name not in os.environ:
        os.environ[name] = value
        _decided.append(name)


if _listening(5432):
    _decide("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

# Redis: this machine's server (a database number per session), else a Valkey the session starts.
_redis_db = 13 + (int(SESSION.removeprefix("gw")) if SESSION else 0)
if "REDIS_URL" not in os.environ:
    if _listening(6379) and _redis_db <= 15:
        _decide("REDIS_URL", f"redis://127.0.0.1:6379/{_redis_db}")
    else:
        _decide("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        _decide("SKINSIGHT_TEST_START_REDIS", "1")

if "S3_ENDPOINT_URL" not in os.environ:
    _decide("S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    _decide("S3_BUCKET", "skinsight-test")
    _decide("SKINSIGHT_TEST_START_S3", "1")

_decide(
    "SKINSIGHT_VAR_DIR",
    os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"skinsight-test-var{SESSION and '-' + SESSION}"
    ),
)
os.environ[_DECIDED] = ",".join(name for name in _decided if name)

# Tiny datasets and quick heartbeats for the training tests (workers inherit these).
os.environ.setdefault("TRAINING_MIN_IMAGES_PER_CLASS", "3")
os.environ.setdefault("TRAINING_HEARTBEAT_SECONDS", "1")

from webapp.config.settings import *  # noqa: E402, F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
