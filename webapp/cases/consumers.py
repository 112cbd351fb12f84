from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from webapp.cases.selectors import case_get_for_user, case_group_name, case_state

# Close codes the page understands: stop retrying for these, they will not change by retrying.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _load_state(user, public_id) -> tuple[str, dict] | None:
    try:
        case = case_get_for_user(user=user, public_id=public_id)
    except Http404:
        return None
    return case_group_name(case), case_state(case)


class CaseConsumer(AsyncJsonWebsocketConsumer):
    """Pushes a case's state to its results page. Sends the current state on connect, so a result
    that arrived before the socket opened is never missed."""

    group_name: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        loaded = await _load_state(user, self.scope["url_route"]["kwargs"]["public_id"])
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
        user = self.scope["user"]
        loaded = await _load_state(user, self.scope["url_route"]["kwargs"]["public_id"])
        if loaded is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json(loaded[1])

    async def case_update(self, event):
        await self.send_json(event["state"])
