"""WSGI entry point: pages and the API over plain HTTP (gunicorn; see deploy.commands.web).
WebSockets go through the ASGI entry point (asgi.py) on a server of their own."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")
application = get_wsgi_application()

from webapp.config.proxy import ForwardedFor  # noqa: E402 (needs Django set up)
from webapp.config.warmup import warm_web_process  # noqa: E402

warm_web_process()

# Behind the container image's proxy: the client's address is the one the proxy passes on.
proxied_application = ForwardedFor(application)
