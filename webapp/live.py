"""Live pages: a WebSocket that sends an object's current state on connect and every change after.

A case's results page and a training run's page both use it; each says who may watch and how to load the
state (the same dict its page, JSON view and API send).
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close codes the pages understand: they stop retrying, because retrying would not change the answer.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class StateConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses give `load(user, public_id) -> (group name, state) | None` (synchronous, may query)
    and may refuse users with `allowed(user)`."""

    group_name: str | None = None

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

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not self.allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        loaded = await self._load()
        if loaded is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group_name, state = loaded
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The page may ask again (e.g. after waking from sleep); clients send nothing else.
        loaded = await self._load()
        if loaded is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json(loaded[1])

    async def state_update(self, event):
        await self.send_json(event["state"])
