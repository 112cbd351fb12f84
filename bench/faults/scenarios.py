"""The fault scenarios: each starts a fresh portal, streams uploads, strikes while they run, and counts.

Every scenario runs the real processes (gunicorn, uvicorn, Celery worker and beat) against real services
(PostgreSQL, Valkey, SeaweedFS). The reconciler runs every few seconds here, instead of every
minute, so a run takes minutes rather than an hour; what it does is the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.faults.stream import JobStream
from bench.outage_proxy import OutageProxy
from bench.portal import PG, ROOT, Portal
from deploy.local_services import RedisServer, S3Server, free_port

VAR = ROOT / "var" / "faults"
DATABASE = "skinsight_faults"
OUTAGE_SECONDS = 60
FAULT_OVER_AT = "_fault_over_at"  # a strike that ends its fault before it returns says when
DRAIN_TIMEOUT = 900

# The fault portal: the reconciler every 5 s, a queued case sent again after 15 s without its
# message; heat maps off (no explain worker here: they are not what is counted).
PORTAL_SETTINGS = {
    "REAPER_INTERVAL_SECONDS": "5",
    "CASE_REQUEUE_AFTER": "15",
    "HEATMAPS": "false",
    "FAULT_DECODE_DELAY_MS": "100",
}


@dataclass
class Scenario:
    name: str
    what: str
    strike: Callable[[Portal, JobStream], dict]
    jobs: int = 200
    rate: float = 10.0
    settings: dict[str, str] = field(default_factory=dict)
    database_proxy: bool = False
    poison: bool = False


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def _service(portal: Portal, kind: type):
    return next(s for s in portal.supervisor.services if isinstance(s, kind))


def _running_cases(portal: Portal) -> int:
    return portal.sql("SELECT count(*) FROM cases_case WHERE status = 'running'")[0][0]


# Strikes -----------------------------------------------------------------------------------


def kill_worker_children(portal: Portal, stream: JobStream, kills: int = 6) -> dict:
    """SIGKILL every pool process of the worker while a job runs, ``kills`` times; the worker's
    main process starts new ones."""
    rounds_with_a_job = 0
    time.sleep(3)
    for _ in range(kills):
        deadline = time.monotonic() + 10
        while _running_cases(portal) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        rounds_with_a_job += _running_cases(portal) > 0
        for child in portal.worker_children():
            os.kill(child, signal.SIGKILL)
        time.sleep(2.5)
    return {"pool_sigkills": kills, "pool_sigkills_with_a_job_running": rounds_with_a_job}


def lose_worker_host(portal: Portal, stream: JobStream) -> dict:
    """SIGKILL the whole worker (main process and pool) while it holds prefetched jobs, then start
    another worker, as a new host would be; the dead one's jobs wait for the visibility timeout."""
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + 30
    while broker.hlen("unacked") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    held = broker.hlen("unacked")
    os.killpg(portal.worker.pid, signal.SIGKILL)
    portal.worker.wait()
    killed_at = time.monotonic()
    portal.start_worker()
    return {
        # The fault is the loss itself: the drain is timed from it, redelivery included.
        FAULT_OVER_AT: killed_at,
        "jobs_held_by_the_lost_host": held,
        "visibility_timeout_s": int(os.environ["CELERY_VISIBILITY_TIMEOUT"]),
    }


def restart_redis_empty(portal: Portal, stream: JobStream) -> dict:
    """Stop Valkey, wipe its data (every queued message, result and cache entry), start it again."""
    time.sleep(5)
    server = _service(portal, RedisServer)
    server.stop()
    for item in server.data_dir.iterdir():
        if item.name.startswith(("appendonly", "dump")):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    time.sleep(10)
    server.start()
    return {"redis_down_s": 10}


def stop_object_store(portal: Portal, stream: JobStream) -> dict:
    time.sleep(5)
    server = _service(portal, S3Server)
    server.stop()
    time.sleep(OUTAGE_SECONDS)
    server.start()
    return {"s3_down_s": OUTAGE_SECONDS}


def cut_database(portal: Portal, stream: JobStream) -> dict:
    time.sleep(5)
    portal.database_proxy.cut()
    time.sleep(OUTAGE_SECONDS)
    portal.database_proxy.restore()
    return {"database_unreachable_s": OUTAGE_SECONDS}


def break_bundle(portal: Portal, stream: JobStream) -> dict:
    """A fresh worker on a fresh host (no verified copy of the bundle on its disk) while the active
    bundle is deleted, then truncated, 30 s each as uploads arrive; then put back. No job may
    finish with a model that is not there."""
    s3 = _service(portal, S3Server)
    client, bucket = s3.client(), s3.bucket
    key = portal.sql("SELECT bundle_key FROM modelops_modelversion WHERE name = 'bench'")[0][0]
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    os.killpg(portal.worker.pid, signal.SIGTERM)
    portal.worker.wait()
    shutil.rmtree(portal.var_dir / "model-cache", ignore_errors=True)
    client.delete_object(Bucket=bucket, Key=key)
    portal.start_worker()
    time.sleep(30)
    done_while_deleted = _done(portal)
    client.put_object(Bucket=bucket, Key=key, Body=original[: len(original) // 2])
    time.sleep(30)
    done_while_truncated = _done(portal)
    client.put_object(Bucket=bucket, Key=key, Body=original)
    said = subprocess.run(
        ["grep", "-c", "-i", "model bundle", str(portal.log)], capture_output=True, text=True
    ).stdout.strip()
    return {
        "done_while_bundle_deleted": done_while_deleted,
        "done_while_bundle_truncated": done_while_truncated,
        "worker_log_lines_naming_the_bundle": int(said or 0),
    }


def _done(portal: Portal) -> int:
    return portal.sql("SELECT count(*) FROM cases_case WHERE status = 'done'")[0][0]


def poison_job(portal: Portal, stream: JobStream) -> dict:
    """One upload (the stream's 11th) kills whichever worker process decodes it, every time."""
    return {"poisoned_uploads": 1}


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "worker-sigkill",
            "the worker's pool processes SIGKILLed mid-job, 6 times",
            kill_worker_children,
        ),
        Scenario(
            "redis-restarted-empty",
            "Valkey stopped for 10 s and started again with no data (every queued job lost)",
            restart_redis_empty,
        ),
        Scenario(
            "s3-stopped",
            f"the S3 server stopped for {OUTAGE_SECONDS} s",
            stop_object_store,
        ),
        Scenario(
            "database-unreachable",
            f"PostgreSQL unreachable for {OUTAGE_SECONDS} s (connections reset, new ones refused)",
            cut_database,
            database_proxy=True,
        ),
        Scenario(
            "bundle-broken",
            "the active model bundle deleted, then truncated, in S3, 30 s each, then put back",
            break_bundle,
            jobs=100,
            rate=2.0,
        ),
        Scenario(
            "poison-job",
            "one photo kills the worker process that decodes it, every time (as an OOM kill)",
            poison_job,
            jobs=100,
            poison=True,
        ),
        Scenario(
            "worker-host-lost",
            "the whole worker (main process and pool) SIGKILLed holding prefetched jobs; "
            "another worker started at once",
            lose_worker_host,
            jobs=60,
            rate=30.0,
            # A short visibility timeout (the least the settings accept with this time limit), so
            # the redelivery is seen in minutes; production keeps 15 minutes.
            settings={
                "CLASSIFY_SOFT_TIME_LIMIT": "15",
                "CLASSIFY_TIME_LIMIT": "20",
                "CELERY_VISIBILITY_TIMEOUT": "330",
                "FAULT_DECODE_DELAY_MS": "300",
            },
        ),
    ]
}

POISON_INDEX = 10
POISON_SIZE = (601, 451)


def run(scenario: Scenario, bundle: Path) -> dict:
    print(f"{scenario.name}: {scenario.what}", flush=True)
    proxy = None
    database_url = None
    if scenario.database_proxy:
        host, port = PG.rsplit("@", 1)[1].split(":")
        proxy = OutageProxy((host, int(port)), free_port()).start()
        database_url = f"{PG.rsplit('@', 1)[0]}@{proxy.url_address}/{DATABASE}"
    settings = {**PORTAL_SETTINGS, **scenario.settings}
    if scenario.poison:
        settings["FAULT_KILL_SIZE"] = "x".join(map(str, POISON_SIZE))
    started = time.monotonic()
    with Portal(
        bundle,
        var_dir=VAR / scenario.name,
        database=DATABASE,
        worker_concurrency=2,
        settings=settings,
        scheduler=True,
        database_url=database_url,
        worker_app="bench.faults.fault_worker",
    ) as portal:
        portal.database_proxy = proxy
        _say(f"portal up in {time.monotonic() - started:.0f} s; streaming {scenario.jobs} uploads")
        stream = JobStream(portal, scenario.name, scenario.jobs, rate=scenario.rate)
        if scenario.poison:
            stream.special[POISON_INDEX] = POISON_SIZE
        stream.start()
        facts = scenario.strike(portal, stream)
        fault_over = facts.pop(FAULT_OVER_AT, time.monotonic())
        _say(f"fault over: {facts}")
        stream.join()
        drained = stream.wait_drained(DRAIN_TIMEOUT)
        counts = stream.tally()
        counts["fault_over_to_drained_s"] = (
            None if drained is None else round(time.monotonic() - fault_over, 1)
        )
        counts["mismatched_rows_and_objects"] = _check_objects()
        counts.update(facts)
        if scenario.poison:
            counts["poisoned_job"] = _poisoned(stream)
    _say(
        "submitted {submitted}, accepted {accepted}, completed {completed}, "
        "failed with a reason {failed_with_reason}, lost {lost}, duplicated {duplicated}, "
        "most deliveries of one job {most_deliveries_of_one_job}".format(**counts)
    )
    return {"scenario": scenario.name, "what": scenario.what, **counts}


def _poisoned(stream: JobStream) -> dict:
    submission = stream.submissions[POISON_INDEX]
    row = stream.portal.sql(
        "SELECT status, attempts, status_reason FROM cases_case WHERE public_id::text = %s",
        (submission.case_id,),
    )
    status, attempts, reason = row[0] if row else ("not accepted", 0, "")
    return {"status": status, "deliveries": attempts, "reason": reason}


def _check_objects() -> int:
    """Rows without their objects and objects without their rows, by `manage.py reconcile`."""
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--check-objects"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in done.stdout.splitlines():
        if not line.startswith(("  ", "sent again")) and ":" in line:
            total += int(line.rsplit(":", 1)[1])
    return total
