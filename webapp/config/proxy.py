"""The client's address behind a reverse proxy, for the audit log and the login throttle.

gunicorn leaves REMOTE_ADDR as the proxy's address. When the request comes from a trusted proxy
(``FORWARDED_ALLOW_IPS``, the same setting and default that uvicorn and gunicorn use), the
address that proxy appended to X-Forwarded-For is the client's; anything to its left was written
by the client and is not believed.
"""

from django.conf import settings


class ForwardedFor:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        trusted = settings.FORWARDED_ALLOW_IPS
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and ("*" in trusted or environ.get("REMOTE_ADDR") in trusted):
            environ["REMOTE_ADDR"] = forwarded.rsplit(",", 1)[-1].strip()
        return self.app(environ, start_response)
