"""What is still waiting in the Redis broker, so the reaper re-sends only jobs whose message was lost.

Reads kombu's Redis layout: each queue is a list per priority step, and messages a worker has taken but not
acknowledged are kept in the `unacked` hash. Only read, never changed.
"""

from __future__ import annotations

import base64
import json

import redis
from django.conf import settings

from webapp.config.celery import app, queue_of


def first_argument(raw: bytes | str, task_name: str):
    """The first argument of a ``task_name`` message as kombu stores it; None for other tasks."""
    message = json.loads(raw)
    if isinstance(message, list):  # unacked entries are [message, exchange, routing key]
        message = message[0]
    if message.get("headers", {}).get("task") != task_name:
        return None
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return args[0] if args else None


def waiting_first_arguments(task_name: str) -> set:
    """The first argument of every ``task_name`` message queued in its queue or held by a worker."""
    queue = queue_of(task_name)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        lists = [channel._q_for_pri(queue, priority) for priority in channel.priority_steps]
        unacked_key = channel.unacked_key
    raws = [raw for name in dict.fromkeys(lists) for raw in client.lrange(name, 0, -1)]
    raws += client.hvals(unacked_key)
    found = set()
    for raw in raws:
        try:
            argument = first_argument(raw, task_name)
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not a Celery message of ours
        if argument is not None:
            found.add(argument)
    return found
