"""One place that turns expected refusals into API responses, so the pages and the API agree."""

from rest_framework.response import Response
from rest_framework.views import exception_handler

from webapp.errors import ApplicationError


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"detail": str(exc), **exc.extra}, status=exc.status)
    return exception_handler(exc, context)
