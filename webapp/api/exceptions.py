"""One place that turns expected refusals into API responses, so the pages and the API agree."""

from rest_framework.response import Response
from rest_framework.views import exception_handler

from webapp.modelops.services.common import ModelOpsError, PromotionRefused
from webapp.storage.store import StorageUnavailable


def api_exception_handler(exc, context):
    if isinstance(exc, ModelOpsError):
        body = {"detail": str(exc)}
        if isinstance(exc, PromotionRefused):
            body["gate"] = exc.gate
        return Response(body, status=exc.status)
    if isinstance(exc, StorageUnavailable):
        return Response({"detail": str(exc)}, status=503)
    return exception_handler(exc, context)
