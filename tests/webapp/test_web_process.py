"""What a web process sets up once rather than per request: its warm-up, one Redis cache client,
and job sends that never look for a result backend."""

import threading

import redis
from django.core.cache import caches

from webapp.config.celery import CLASSIFY_TASK, app, enqueue_quietly
from webapp.config.warmup import warm_web_process
from webapp.storage import store


def test_warm_up_makes_the_object_store_clients_before_any_request(monkeypatch):
    monkeypatch.setattr(store, "_clients", {})
    warm_web_process()
    # The boto3 client and the signed-request client, one each.
    assert len(store._clients) == 2
    made = set(map(id, store._clients.values()))
    store.prepare_client()  # later calls, and requests, use the same ones
    assert {id(store._client()), id(store._signed())} == made and len(store._clients) == 2


def test_every_cache_object_of_a_process_shares_one_redis_client():
    # Django makes a cache object per request context; each used to open its own pool.
    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second
    assert first._cache is second._cache
    first.set("shared-client-probe", 42, 30)
    assert second.get("shared-client-probe") == 42


def test_a_job_sent_from_a_new_thread_never_looks_up_a_result_backend(
    monkeypatch, settings, broker_queue_length
):
    def no_backend():
        raise AssertionError("a result backend was looked up")

    monkeypatch.setattr(app, "_get_backend", no_backend)
    queue = "probe-send-without-backend"
    # The job goes where the routing table says: here, a queue no worker reads.
    settings.CELERY_TASK_ROUTES = {CLASSIFY_TASK: {"queue": queue}}
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
    sent = []
    thread = threading.Thread(target=lambda: sent.append(enqueue_quietly(CLASSIFY_TASK, 1)))
    thread.start()
    thread.join()
    assert sent == [True]
    assert broker_queue_length(queue) == 1
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
