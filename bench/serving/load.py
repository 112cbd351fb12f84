"""A small closed-loop HTTP load client, and the server lifecycle, shared by the baselines.

Every baseline is measured by the same client so their numbers differ only by the server: a
fixed number of requests is drawn from one shared counter by ``clients`` threads, each sending
its next request as soon as the previous one answered (a closed loop, as browsers uploading
photos one after another would). Each thread owns one ``requests.Session`` (sessions are not
thread-safe, and reusing one keeps connections alive as a real client would).

The servers under test run as subprocesses in their own process group (gunicorn and BentoML
both fork workers), so stopping one stops all of its processes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.serving.cpu import CpuMeter, only, under

# send(session, i) posts request number i and returns the server's response.
Send = Callable[[requests.Session, int], requests.Response]


def run_load(send: Send, total: int, clients: int) -> dict:
    """Call ``send(session, i)`` for every i in range(total) from ``clients`` threads.

    Exceptions and non-2xx answers count as errors and the run goes on: one failed request
    must not hide the throughput of the others. Latencies are those of successful requests.
    """
    if total < 1 or clients < 1:
        raise ValueError(f"total and clients must be >= 1, got {total} and {clients}")
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        with requests.Session() as session:
            while (index := _next(counter, lock)) < total:
                ok, seconds = _timed(send, session, index)
                with lock:
                    if ok:
                        latencies.append(seconds)
                    else:
                        errors[0] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    return {
        "requests": total,
        "clients": clients,
        "seconds": wall,
        "per_second": total / wall,
        "p50_ms": _percentile_ms(latencies, 50),
        "p95_ms": _percentile_ms(latencies, 95),
        "errors": errors[0],
    }


def run_server_load(server: subprocess.Popen, send: Send, total: int, clients: int) -> dict:
    """``run_load`` against ``server``, with the CPU milliseconds per request of the server's
    processes and of this load client (``cpu_ms_per_image``)."""
    groups = {"server": under(server.pid), "load client": only(os.getpid())}
    with CpuMeter(groups) as meter:
        result = run_load(send, total, clients)
    return {**result, "cpu_ms_per_image": meter.ms_per(total)}


def _next(counter: itertools.count, lock: threading.Lock) -> int:
    with lock:
        return next(counter)


def _timed(send: Send, session: requests.Session, index: int) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        ok = 200 <= send(session, index).status_code < 300
    except Exception:  # any failure of one request is an error to count, not to raise
        ok = False
    return ok, time.perf_counter() - started


def _percentile_ms(seconds: list[float], percent: float) -> float | None:
    """Nearest-rank percentile in milliseconds; None when no request succeeded."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1] * 1000.0


def free_port() -> int:
    """A TCP port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], *, log: Path, env: dict[str, str], cwd: Path):
    """Start ``command`` in a new process group, its output going to ``log``."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_answers(
    server: subprocess.Popen, probe: Callable[[], bool], *, log: Path, timeout: float
) -> None:
    """Poll ``probe`` until it returns True; raise RuntimeError (with the server's log) if the
    server exits or does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}:\n{_tail(log)}")
        try:
            if probe():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not answer within {timeout:.0f} s:\n{_tail(log)}")


def stop_server(server: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM the server's process group, wait up to ``grace`` seconds for it to shut down,
    then SIGKILL whatever is left of the group (a hung master, or workers it did not reap)."""
    _signal_group(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=grace)
    _signal_group(server.pid, signal.SIGKILL)
    server.wait()


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited already
        os.killpg(group, sig)


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
