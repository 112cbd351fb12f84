"""Slowing down password guessing without locking the real user out for good.

Failed sign-ins are counted per account name and per client address in the shared cache, each over a
window (`LOGIN_FAILURE_WINDOW` seconds). Past `LOGIN_FAILURES_PER_ACCOUNT` (or `LOGIN_FAILURES_PER_ADDRESS`)
failures, sign-ins for that account (or from that address) are refused until the window that started
with the first failure ends; then the count starts again. A successful sign-in clears its account's count.
The page and the token API both ask `login_wait` first and report with `login_failed`/`login_succeeded`.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _keys(username: str, address: str) -> dict[str, int]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return {
        f"login-failures:account:{account}": settings.LOGIN_FAILURES_PER_ACCOUNT,
        f"login-failures:address:{address}": settings.LOGIN_FAILURES_PER_ADDRESS,
    }


def client_address(request) -> str:
    # REMOTE_ADDR is the proxy's address behind one; the server trusts X-Forwarded-For only where
    # the proxy sets it (uvicorn --proxy-headers in the container image rewrites REMOTE_ADDR).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def login_wait(username: str, address: str) -> int:
    """Seconds before this account may try again from this address; 0 when it may try now."""
    try:
        entries = cache.get_many(list(_keys(username, address)))
    except RedisError as exc:
        logger.warning("sign-in throttle not checked, the cache is unreachable: %s", exc)
        return 0
    now = time.time()
    waits = [
        int(started + settings.LOGIN_FAILURE_WINDOW - now) + 1
        for key, limit in _keys(username, address).items()
        if key in entries
        for count, started in [entries[key]]
        if count >= limit
    ]
    return max([0, *waits])


def login_failed(username: str, address: str) -> None:
    now = time.time()
    try:
        for key in _keys(username, address):
            count, started = cache.get(key) or (0, now)
            remaining = max(1, int(started + settings.LOGIN_FAILURE_WINDOW - now))
            cache.set(key, (count + 1, started), timeout=remaining)
    except RedisError as exc:
        logger.warning("sign-in failure not counted, the cache is unreachable: %s", exc)


def login_succeeded(username: str) -> None:
    try:
        cache.delete(next(iter(_keys(username, ""))))
    except RedisError as exc:
        logger.warning("sign-in count not cleared, the cache is unreachable: %s", exc)
