from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from webapp.accounts.login_throttle import (
    client_address,
    login_failed,
    login_succeeded,
    login_wait,
)
from webapp.accounts.models import User
from webapp.errors import try_again_in


class SignUpForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email")


def throttled_message(wait_seconds: int) -> str:
    return "Too many failed sign-ins for this account or from this network. " + try_again_in(
        wait_seconds
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing tries while `login_throttle` says to wait."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        wait = login_wait(username, address)
        if wait:
            raise forms.ValidationError(throttled_message(wait), code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_failed(username, address)
            raise
        login_succeeded(username)
        return cleaned
