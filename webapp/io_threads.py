"""One small thread pool per process, for network waits that can overlap: an upload's photo is
written to the object store while its rows are inserted, a batch's photos are read together and
its results written while the predictions are recorded.

The object store's client is shared by these threads (webapp/storage/store.py); database work stays
on the caller's thread, whose connection and transaction Django keeps per thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

IO_THREADS = 8

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # Keyed by process id: a pool inherited across fork has no threads behind it.
    pid = os.getpid()
    with _pools_lock:
        if pid not in _pools:
            _pools[pid] = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io")
        return _pools[pid]


def start(fn: Callable[..., R], *args) -> Future[R]:
    """``fn(*args)`` on the pool; the caller goes on and collects the outcome later."""
    return _pool().submit(fn, *args)


def in_threads(fn: Callable[[K], R], keys: Iterable[K]) -> dict[K, R | Exception]:
    """``fn(key)`` for every key at once; each key gets its result or the exception it raised."""
    keys = list(keys)
    if len(keys) == 1:  # nothing to overlap: skip the hand-over to another thread
        return {keys[0]: _result_or_error(fn, keys[0])}
    futures = {key: start(_result_or_error, fn, key) for key in keys}
    return {key: future.result() for key, future in futures.items()}


def _result_or_error(fn: Callable[[K], R], key: K) -> R | Exception:
    try:
        return fn(key)
    except Exception as exc:
        return exc
