"""The account API: a token for a username and password."""

from collections.abc import Mapping

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError

from webapp.accounts.forms import throttled_message
from webapp.accounts.login_throttle import client_address, login_failed, login_succeeded, login_wait


class TokenView(ObtainAuthToken):
    """A token for a username and password; failed tries are throttled like the sign-in page's
    (429 with Retry-After while the account or address must wait)."""

    def post(self, request, *args, **kwargs):
        if not isinstance(request.data, Mapping):
            raise ValidationError({"detail": "Send an object with 'username' and 'password'."})
        username = str(request.data.get("username", ""))
        address = client_address(request)
        wait = login_wait(username, address)
        if wait:
            raise Throttled(wait=wait, detail=throttled_message(wait))
        try:
            response = super().post(request, *args, **kwargs)
        except ValidationError:
            login_failed(username, address)
            raise
        login_succeeded(username)
        return response
