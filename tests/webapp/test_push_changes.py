"""Pushes from synchronous code (workers, services) reuse the process's Redis connection and never raise."""

import logging

import redis
from django.conf import settings
from django.test import override_settings

from webapp.live import push_changes


def connections_received() -> int:
    return redis.Redis.from_url(settings.REDIS_URL).info("stats")["total_connections_received"]


def test_pushes_share_one_kept_connection():
    push_changes(["warm-up"], what="warm-up")  # the first push may open the connection
    before = connections_received()
    for n in range(10):
        push_changes([f"nobody-listens-{n}"], what=f"push {n}")
    # connections_received itself opens one; a connection per push (as async_to_sync made) gives 11.
    assert connections_received() - before <= 2


def test_a_push_to_an_unreachable_layer_is_logged_not_raised(caplog):
    unreachable = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=unreachable), caplog.at_level(logging.WARNING):
        push_changes(["group"], what="case 42")
    assert "live push for case 42 failed" in caplog.text
