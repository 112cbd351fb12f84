"""Password guessing is slowed, per account and per address, on the sign-in page and the token API; the real
user is never locked out for good."""

import itertools
import time

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest.fixture
def address():
    """A client address of this test alone: the counts live in the shared cache."""
    return next(_addresses)


def sign_in(client, username, password, address):
    return client.post(
        reverse("accounts:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_an_account_waits_after_five_failures_then_signs_in_again(client, address, settings):
    settings.LOGIN_FAILURE_WINDOW = 2
    user = UserFactory()
    for _ in range(5):
        assert "Please enter a correct" in sign_in(client, user.username, "nope", address).text
    refused = sign_in(client, user.username, PASSWORD, address)
    assert refused.status_code == 200
    assert "Too many failed sign-ins" in refused.text
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not held up by this one's failures.
    other = UserFactory()
    assert sign_in(client, other.username, PASSWORD, address).status_code == 302
    client.logout()

    time.sleep(2.1)  # the window ends: the real user gets in
    assert sign_in(client, user.username, PASSWORD, address).status_code == 302


def test_a_success_clears_the_accounts_count(client, address):
    user = UserFactory()
    for _ in range(4):
        sign_in(client, user.username, "nope", address)
    assert sign_in(client, user.username, PASSWORD, address).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, user.username, "nope", address)
    assert sign_in(client, user.username, PASSWORD, address).status_code == 302


def test_one_address_guessing_many_accounts_is_held_up(client, address, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for _ in range(3):
        sign_in(client, UserFactory().username, "nope", address)
    fresh = UserFactory()
    assert "Too many failed sign-ins" in sign_in(client, fresh.username, PASSWORD, address).text
    # From elsewhere, that account signs in.
    assert sign_in(client, fresh.username, PASSWORD, next(_addresses)).status_code == 302


def test_the_token_api_answers_429_with_retry_after(address):
    user = UserFactory()
    api = APIClient(REMOTE_ADDR=address)
    url = reverse("api:token")
    for _ in range(5):
        assert api.post(url, {"username": user.username, "password": "nope"}).status_code == 400
    refused = api.post(url, {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 15 * 60 + 1
    assert "Too many failed sign-ins" in refused.json()["detail"]
