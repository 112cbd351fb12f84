"""Content-Security-Policy for every response that does not set its own.

The portal's pages load scripts and styles only from their own origin and have no inline script or style,
so the policy allows nothing else: an injected script tag or handler does not run. The Django admin and the
REST framework's browsable API use inline scripts and styles of their own and get a policy that allows
those. Private files (photos, heat maps) set their own sandboxing policy, which is kept.
"""

from django.conf import settings
from django.http.request import split_domain_port

STRICT = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",  # the live pages' WebSocket: same origin, or see _with_live_port
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
WITH_INLINE = STRICT.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
INLINE_PREFIXES = ("/admin/", "/api/")


def _with_live_port(policy: str, request) -> str:
    """Where the WebSocket server has a port of its own (``LIVE_PORT``), the pages may connect to
    that port of the host they were loaded from, and nowhere else."""
    domain, _ = split_domain_port(request.get_host())
    port = settings.LIVE_PORT
    return policy.replace(
        "connect-src 'self'", f"connect-src 'self' ws://{domain}:{port} wss://{domain}:{port}"
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            inline = request.path.startswith(INLINE_PREFIXES)
            policy = WITH_INLINE if inline else STRICT
            if settings.LIVE_PORT:
                policy = _with_live_port(policy, request)
            response["Content-Security-Policy"] = policy
        return response
