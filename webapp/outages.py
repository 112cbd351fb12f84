"""A service the portal needs (database, cache, broker) cannot be reached: 503, never a 500.

Nothing was written (the request's transaction was rolled back), so the same request may simply
be sent again; Retry-After says when. The answer is JSON under /api/ and a page of its own
elsewhere (the site's layout reads the session, which may be what is down). The stack trace goes
to the server's log only.
"""

import logging

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError as BrokerError

from webapp.errors import Unavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# Errors that mean "a service is down", not "this request or the code is wrong".
OUTAGES = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    BrokerError,
    Unavailable,
)
MESSAGE = "The service is unavailable for a moment; nothing was saved. Please try again."


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def outage_response(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(
            render_to_string("errors/503.html", {"message": MESSAGE}), status=503
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OutageMiddleware:
    """Last in MIDDLEWARE, so it is the first to see what a view raised."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OUTAGES):
            logger.error(
                "%s %s: service unavailable", request.method, request.path, exc_info=exception
            )
            return outage_response(request)
        return None
