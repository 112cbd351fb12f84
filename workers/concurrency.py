"""Overlapping the I/O of a batch's jobs: object-store reads and writes, JPEG decoding.

Each inference process keeps one small thread pool for its life, so threads are not started
for every batch; the object store's client is shared by them (webapp/storage/store.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from webapp.metrics import JOB_STAGE_SECONDS

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

IO_THREADS = 8

_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    # Keyed by process id: a pool inherited across fork has no threads behind it.
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="batch-io")
    return _pools[pid]


def in_threads(fn: Callable[[K], R], keys: Iterable[K]) -> dict[K, R | Exception]:
    """``fn(key)`` for every key at once; each key gets its result or the exception it raised."""
    keys = list(keys)
    if len(keys) == 1:  # nothing to overlap: skip the hand-over to another thread
        return {keys[0]: _result_or_error(fn, keys[0])}
    futures = {key: _pool().submit(_result_or_error, fn, key) for key in keys}
    return {key: future.result() for key, future in futures.items()}


def _result_or_error(fn: Callable[[K], R], key: K) -> R | Exception:
    try:
        return fn(key)
    except Exception as exc:
        return exc


@contextmanager
def stage_timer(timings: dict[str, int], stage: str) -> Iterator[None]:
    """Add the block's wall time, in ms, to ``timings[stage]`` (the batch's log line) and to
    the ``skinsight_job_stage_seconds`` metric."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        timings[stage] = timings.get(stage, 0) + round(seconds * 1000)
        JOB_STAGE_SECONDS.labels(stage).observe(seconds)
