"""Serving a private object to someone a view has already authorised: streamed by the web app (never a
public bucket URL), inline, sandboxed so that a file that is also valid HTML can never run as a page."""

from django.http import Http404, HttpResponse

from webapp.storage import store


def private_object_response(
    key: str, *, what: str, content_type: str, max_age: int
) -> HttpResponse:
    try:
        content = store.read(key, what=what)
    except store.ObjectMissing as exc:
        raise Http404(f"{what} is no longer stored.") from exc
    except store.StorageUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
