"""Live pages: a WebSocket that sends an object's current state on connect and every change after.

A case's results page and a training run's page both use it; each says who may watch and how to load the
state (the same dict its page, JSON view and API send). A change is announced to the object's group without
its state; each socket then loads the state with its own user's permissions.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Iterable

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from webapp.audit.services import audit_record

logger = logging.getLogger(__name__)

# How long a push may hold up the job that made it; pages poll, so a slow push is dropped.
PUSH_TIMEOUT_SECONDS = 5.0

# Close codes the pages understand: they stop retrying, because retrying would not change the answer.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def live_port(request) -> dict:
    """Template context: where the live pages open their socket when it is not their own origin
    (``LIVE_PORT``; base.html gives it to live.js)."""
    return {"live_port": settings.LIVE_PORT}


class StateConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses give `load(user, public_id) -> (group name, state) | None` (synchronous, may query)
    and may refuse users with `allowed(user)`."""

    group_name: str | None = None
    # Set for sockets that carry patient data: every connection, refusal and push is audited.
    audited_as: str | None = None

    @staticmethod
    def allowed(user) -> bool:
        return True

    @staticmethod
    def load(user, public_id) -> tuple[str, dict] | None:
        raise NotImplementedError

    async def _load(self):
        return await database_sync_to_async(self.load)(
            self.scope["user"], self.scope["url_route"]["kwargs"]["public_id"]
        )

    async def _audit(self, action: str, *, allowed: bool, code: int | None = None) -> None:
        if self.audited_as is None:
            return
        client = self.scope.get("client") or (None,)
        await database_sync_to_async(audit_record)(
            user=self.scope.get("user"),
            action=action,
            route=f"ws:{self.audited_as}",
            object_type=self.audited_as,
            object_id=str(self.scope["url_route"]["kwargs"].get("public_id", "")),
            allowed=allowed,
            status_code=code,
            ip=client[0],
        )

    async def _refuse(self, code: int) -> None:
        await self._audit("watch", allowed=False, code=code)
        await self.close(code=code)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        if not self.allowed(user):
            await self._refuse(CLOSE_FORBIDDEN)
            return
        loaded = await self._load()
        if loaded is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        self.group_name = loaded[0]
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        # Read the state again once subscribed: a change pushed between the first read and
        # group_add would otherwise be lost, and the page would show a stale state until it polls.
        loaded = await self._load()
        if loaded is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        await self.accept()
        await self._audit("watch", allowed=True)
        await self.send_json(loaded[1])

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The page may ask again (e.g. after waking from sleep); clients send nothing else.
        await self._send_state("read")

    async def state_changed(self, event):
        # Read here, for this socket's user, not where the change was made: whoever changed it
        # serialises nothing for pages nobody watches, and a user who lost access meanwhile is
        # closed instead of sent the new state.
        await self._send_state("push")

    async def _send_state(self, action: str) -> None:
        """The current state, read for this socket's user and audited as ``action``; the socket
        is closed when the object is gone or no longer theirs to see."""
        loaded = await self._load()
        if loaded is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        await self._audit(action, allowed=True)
        await self.send_json(loaded[1])


class _PushLoop:
    """One event loop per process, on a thread of its own, for pushes made from synchronous code.

    `async_to_sync(layer.group_send)` runs each call in a new event loop, and the Redis channel
    layer keeps its connections per loop, so every push opened and closed a Redis connection.
    Reusing one loop keeps them. The loop is made in the process that first pushes (never before
    a fork: a forked child finds the parent's loop gone and makes its own).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="live-push", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_push_loop = _PushLoop()


def push_changes(groups: Iterable[str], *, what: str) -> None:
    """Tell the sockets in each group that their object changed, over the process's kept
    connection; each reads the state again for its own user (`StateConsumer.state_changed`).

    Best effort: a failed push is logged, never raised, because every live page also polls.
    """
    layer = get_channel_layer()
    groups = list(groups)
    if layer is None or not groups:
        return

    async def send_all():
        for group in groups:
            await layer.group_send(group, {"type": "state.changed"})

    future = asyncio.run_coroutine_threadsafe(send_all(), _push_loop.loop())
    try:
        future.result(PUSH_TIMEOUT_SECONDS)
    except Exception:
        future.cancel()
        logger.warning("live push for %s failed; the page will poll", what, exc_info=True)
