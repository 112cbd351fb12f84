"""ASGI entry point: HTTP through Django, WebSockets through Channels (live case updates)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")
# Django must be set up before the routing imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webapp.cases.routing import websocket_urlpatterns as case_sockets  # noqa: E402
from webapp.config.warmup import warm_web_process  # noqa: E402
from webapp.modelops.routing import websocket_urlpatterns as run_sockets  # noqa: E402

warm_web_process()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(case_sockets + run_sockets))
        ),
    }
)
