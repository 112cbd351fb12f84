"""(d) SkinSight end to end: API upload → S3 → queue → worker → S3 + database → WebSocket push.

The whole portal runs as `make run` runs it (`bench.portal.Portal`), on a database of its own
(`skinsight_bench`) and a fresh Valkey and SeaweedFS under `var/bench/portal`, the given bundle
registered and activated.

Two measurements:
* idle: one upload at a time; from sending the request to the "done" state pushed over the
  case's WebSocket (the results page's channel);
* backlog: `total` uploads from `clients` threads as fast as they are accepted; accept latency
  from the client, throughput and created → finished from the rows' own timestamps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import time
from pathlib import Path

import requests
import websockets

from bench.portal import ROOT, Portal
from bench.serving.cpu import CpuMeter, Group, named, only, under
from bench.serving.load import run_load

PORTAL_DIR = ROOT / "var" / "bench" / "portal"


class ServingPortal(Portal):
    """The portal with what the serving benchmark measures: pushed results and finished rows."""

    def __init__(self, bundle_dir: Path, *, worker_concurrency: int) -> None:
        super().__init__(
            bundle_dir,
            var_dir=PORTAL_DIR,
            database="skinsight_bench",
            worker_concurrency=worker_concurrency,
            # As deployed: (b) and (c) have no debug mode either, and Django's records every query.
            settings={"DJANGO_DEBUG": "0"},
        )

    def _start(self) -> None:
        super()._start()
        self.cookie = self.session_cookie()

    async def _pushed_done(self, case_id: str) -> None:
        url = f"{self.live_base}/ws/cases/{case_id}/"
        headers = {"Cookie": self.cookie, "Origin": self.base}
        async with websockets.connect(url, additional_headers=headers) as socket:
            while True:
                state = json.loads(await asyncio.wait_for(socket.recv(), 60))
                if state.get("status") in ("done", "failed", "rejected"):
                    return

    def idle_round_trip_ms(
        self, photos: list[bytes], count: int
    ) -> tuple[list[float], list[float]]:
        """One upload at a time: (accepted, pushed result) times in ms, each measured from
        before the request (accepted: the upload's answer received)."""
        accepted, pushed = [], []
        with requests.Session() as session:
            for index in range(count):
                started = time.perf_counter()
                response = self.upload(session, photos[index % len(photos)])
                response.raise_for_status()
                accepted.append((time.perf_counter() - started) * 1000)
                asyncio.run(self._pushed_done(response.json()["id"]))
                pushed.append((time.perf_counter() - started) * 1000)
                time.sleep(0.2)  # idle means idle: nothing else in flight
        return accepted, pushed

    def process_groups(self) -> dict[str, Group]:
        """Where the CPU goes: the portal's processes by role with their children, PostgreSQL's
        (the host's: it was not started by the portal) and this load client."""
        groups: dict[str, Group] = {name: under(pid) for name, pid in self.process_roots().items()}
        return {**groups, "database": named("postgres"), "load client": only(os.getpid())}

    def finished_rows(self, since: float, expected: int, timeout: float = 1800) -> list[tuple]:
        """(created_at, finished_at, status) of the cases made after ``since``, once all are done."""
        deadline = time.monotonic() + timeout
        query = (
            "SELECT created_at, finished_at, status FROM cases_case "
            "WHERE created_at >= to_timestamp(%s) ORDER BY created_at"
        )
        while True:
            rows = self.sql(query, (since,))
            if len(rows) >= expected and all(r[1] is not None for r in rows):
                return rows
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(rows)} of {expected} cases finished in time")
            time.sleep(1)


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(percent / 100 * len(ordered)) - 1)]


def stage_means_ms(metrics_text: str) -> dict[str, float]:
    """Mean milliseconds per stage, from the histograms' _sum and _count samples."""
    sums, counts = {}, {}
    pattern = re.compile(r'^(skinsight_\w+_stage_seconds)_(sum|count)\{stage="(\w+)"\} (\S+)$')
    for line in metrics_text.splitlines():
        match = pattern.match(line)
        if match:
            name, kind, stage, value = match.groups()
            key = f"{name.split('_')[1]}.{stage}"
            (sums if kind == "sum" else counts)[key] = float(value)
    return {k: round(sums[k] / counts[k] * 1000, 1) for k in sums if counts.get(k)}


def measure_skinsight(
    bundle_dir: Path,
    photo_paths: list[Path],
    *,
    total: int = 500,
    clients: int = 8,
    idle_uploads: int = 20,
    worker_concurrency: int = 2,
) -> dict:
    photos = [path.read_bytes() for path in photo_paths]
    with ServingPortal(bundle_dir, worker_concurrency=worker_concurrency) as portal:

        def send(session: requests.Session, index: int) -> requests.Response:
            return portal.upload(session, photos[index % len(photos)])

        # Every web process and pool child serves a few uploads before anything is measured.
        warm_since = time.time() - 1
        run_load(send, 8 * clients, clients)
        portal.finished_rows(warm_since, 8 * clients)
        idle_accepted, idle = portal.idle_round_trip_ms(photos, idle_uploads)
        since = time.time() - 1
        with CpuMeter(portal.process_groups()) as meter:
            accepted = run_load(send, total, clients)
            rows = portal.finished_rows(since, total)
        metrics = portal.metrics()
    latencies = [(finished - created).total_seconds() * 1000 for created, finished, _ in rows]
    span = (max(r[1] for r in rows) - min(r[0] for r in rows)).total_seconds()
    batch_sum = float(re.search(r"^skinsight_batch_jobs_sum (\S+)$", metrics, re.M).group(1))
    batch_count = float(re.search(r"^skinsight_batch_jobs_count (\S+)$", metrics, re.M).group(1))
    return {
        "idle_accept_p50_ms": statistics.median(idle_accepted),
        "idle_accept_p95_ms": _percentile(idle_accepted, 95),
        "idle_upload_to_push_p50_ms": statistics.median(idle),
        "idle_upload_to_push_p95_ms": _percentile(idle, 95),
        "backlog_uploads": total,
        "clients": clients,
        "accepted_per_second": accepted["per_second"],
        "accept_p50_ms": accepted["p50_ms"],
        "accept_p95_ms": accepted["p95_ms"],
        "accept_errors": accepted["errors"],
        "classified_per_second": total / span,
        "created_to_finished_p50_ms": statistics.median(latencies),
        "created_to_finished_p95_ms": _percentile(latencies, 95),
        "not_done": sum(1 for r in rows if r[2] != "done"),
        "mean_batch_jobs": batch_sum / batch_count if batch_count else None,
        "worker_stage_means_ms": stage_means_ms(metrics),
        "worker_concurrency": worker_concurrency,
        "cpu_ms_per_image": meter.ms_per(total),
    }
