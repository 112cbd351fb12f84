"""Django's Redis cache with one client, and so one connection pool, per process.

Django makes a new cache object for every request context under ASGI, and the stock backend gives
each object a connection pool of its own: every request that touched the cache (each upload's rate
limit, each sign-in's throttle) opened a new connection to Redis and left it for the garbage
collector. redis-py's clients and pools are safe to share between threads, so one will do.
"""

from __future__ import annotations

import os
import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class ProcessRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        # Keyed by process too: a client inherited across fork holds its parent's sockets.
        key = (os.getpid(), tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
