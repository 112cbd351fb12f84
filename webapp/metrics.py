"""Prometheus metrics of every SkinSight process, defined in one place.

Web processes (several per host) and inference children (several per worker) each count in their
own process; with ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` and the images set it), the values
of all processes of a host are summed from that folder at scrape time. Without it (tests, a shell)
each process reports its own.

Scraped at ``/metrics`` on the web app (bearer ``METRICS_TOKEN``, or an administrator's session)
and at ``WORKER_METRICS_PORT`` on each inference worker (``workers/health.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Most stages take milliseconds; a batch on a busy CPU or a slow object store takes seconds.
_STAGE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

ACCEPT_SECONDS = Histogram(
    "skinsight_accept_stage_seconds",
    "Time an upload spends in each stage of being accepted by the web app "
    "(fetch: the image URL, normalize: decode and re-encode, store: the object PUT, "
    "record: the database rows, total).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
UPLOADS = Counter(
    "skinsight_uploads_total", "Uploads answered by the web app, by outcome.", ["outcome"]
)
JOB_STAGE_SECONDS = Histogram(
    "skinsight_job_stage_seconds",
    "Time a classification batch spends in each stage (fetch_decode: photos read from the "
    "object store and decoded, infer: the model call, store: result JSON written, "
    "record: prediction rows, push: live update sent).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "skinsight_batch_jobs",
    "Jobs per classification batch (one model call).",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
JOBS = Counter(
    "skinsight_jobs_total",
    "Classification jobs finished, by outcome (done, rejected, failed, retrying, ...).",
    ["outcome"],
)


@contextmanager
def timed(histogram: Histogram, stage: str) -> Iterator[None]:
    """Observe the block's (or, as a decorator, each call's) wall time under ``stage``, also when
    it raises."""
    started = perf_counter()
    try:
        yield
    finally:
        histogram.labels(stage).observe(perf_counter() - started)


class QueueDepth(Collector):
    """Jobs waiting in each broker queue, read from Redis when scraped (deploy/k8s scales the
    inference workers on it)."""

    metric_name = "skinsight_queue_depth"

    def __init__(self, broker_url: str, queues: tuple[str, ...]) -> None:
        self.broker_url = broker_url
        self.queues = queues

    def collect(self):
        family = GaugeMetricFamily(
            self.metric_name, "Jobs waiting in a broker queue.", labels=["queue"]
        )
        try:
            client = redis.Redis.from_url(self.broker_url, socket_timeout=2)
            for queue in self.queues:
                family.add_metric([queue], client.llen(queue))
        except redis.RedisError:
            return  # an unreachable broker shows as missing samples, not a failed scrape
        yield family


def exposition(*extra: Collector) -> bytes:
    """The text format of every metric of this host (or process), plus ``extra`` collectors."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    more = CollectorRegistry()
    for collector in extra:
        more.register(collector)
    return generate_latest(base) + generate_latest(more)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: for a scraper holding ``METRICS_TOKEN``, or an administrator."""
    token = settings.METRICS_TOKEN
    bearer = request.headers.get("Authorization", "")
    allowed = (token and constant_time_compare(bearer, f"Bearer {token}")) or (
        request.user.is_authenticated and request.user.is_admin_role
    )
    if not allowed:
        return HttpResponse(
            "Metrics need the METRICS_TOKEN bearer token or an administrator's session.\n",
            status=403,
            content_type="text/plain",
        )
    body = exposition(QueueDepth(settings.CELERY_BROKER_URL, ("inference", "training")))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
