"""``GET /healthz``: is this web process ready to serve, i.e. do the database and Redis answer?

For load balancers and Kubernetes' probes: no login, and no detail beyond which dependency failed
(never an address or an error text). The object store is left out on purpose: an S3 outage gets
uploads a clear 503 of their own while pages and results keep working, so it must not take every
web process out of rotation.
"""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        logger.warning("health check: the database does not answer", exc_info=True)
        return False


def _redis_answers() -> bool:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        logger.warning("health check: Redis does not answer", exc_info=True)
        return False
    finally:
        client.close()


@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_answers(), "redis": _redis_answers()}
    body = {name: "ok" if fine else "down" for name, fine in checks.items()}
    return JsonResponse(body, status=200 if all(checks.values()) else 503)
