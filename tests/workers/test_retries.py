"""Jobs go to the queue the routing table names, and every job retries by one policy."""

import json

import pytest
import redis

from webapp.config.celery import (
    CLASSIFY_TASK,
    EVALUATE_TASK,
    EXPLAIN_TASK,
    RERUN_TASK,
    TRAIN_TASK,
    queue_of,
)
from webapp.storage.store import StorageUnavailable
from workers.outcomes import Outcome
from workers.retries import RetryPolicy

PROBE = "probe-retries"


def test_each_job_goes_to_the_queue_of_the_routing_table():
    assert queue_of(CLASSIFY_TASK) == "inference"
    assert queue_of(RERUN_TASK) == "inference"  # by the "cases.*" pattern
    assert queue_of(EXPLAIN_TASK) == "explain"  # its own name wins over the pattern
    assert queue_of(TRAIN_TASK) == queue_of(EVALUATE_TASK) == "training"
    with pytest.raises(LookupError, match=r"no queue in CELERY_TASK_ROUTES for 'elsewhere\.job'"):
        queue_of("elsewhere.job")


def test_the_back_off_doubles_and_stays_under_its_cap():
    policy = RetryPolicy(max_retries=8, max_backoff=300)
    assert [policy.backoff(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]


@pytest.fixture
def probe_queue(settings):
    settings.CELERY_TASK_ROUTES = {CLASSIFY_TASK: {"queue": PROBE}}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(PROBE)
    yield client
    client.delete(PROBE)


def test_a_fault_with_retries_left_sends_the_job_again_with_its_count(probe_queue):
    released, given_up = [], []
    answer = RetryPolicy(max_retries=3, max_backoff=300).after_fault(
        task_name=CLASSIFY_TASK,
        args=(41,),
        kwargs={"alone": True},
        retries=1,
        error=StorageUnavailable("store down"),
        give_up=given_up.append,
        before_retry=lambda: released.append(41),
    )
    assert (answer, released, given_up) == (Outcome.RETRYING, [41], [])
    (raw,) = probe_queue.lrange(PROBE, 0, -1)
    headers = json.loads(raw)["headers"]
    assert (headers["task"], headers["retries"], headers["argsrepr"]) == (CLASSIFY_TASK, 2, "[41]")
    assert headers["eta"] is not None  # the back-off: 10 s for the second retry


def test_a_fault_with_no_retries_left_gives_up_and_sends_nothing(probe_queue):
    error = StorageUnavailable("store down")
    answer = RetryPolicy(max_retries=3, max_backoff=300).after_fault(
        task_name=CLASSIFY_TASK,
        args=(41,),
        kwargs={},
        retries=3,
        error=error,
        give_up=lambda exc: f"gave up: {exc}",
    )
    assert answer == "gave up: store down"
    assert probe_queue.llen(PROBE) == 0
