"""What a web process prepares as it starts rather than on the first requests it serves.

Without this, the first upload each process handles pays for making the object store's client
(boto3 reads its service model from disk: a fifth of a second of CPU at idle, a second when the
processes start together under load), importing every view behind the URL configuration,
registering Pillow's format plugins and building the broker's producer pool. None of it touches
the network, so a process still starts while a service is down.
"""

from django.urls import get_resolver
from PIL import Image

from webapp.config.celery import app
from webapp.storage import store


def warm_web_process() -> None:
    store.prepare_client()
    get_resolver().url_patterns  # noqa: B018 (imports the URL modules and their views)
    Image.preinit()
    app.producer_pool  # noqa: B018 (the pool only: connections are made on first use)
