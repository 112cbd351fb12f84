"""Every page carries a Content-Security-Policy; the portal's own pages allow no inline script or style."""

import pytest
from django.urls import reverse

from tests.webapp.test_access_control import api_client

pytestmark = pytest.mark.django_db


def test_portal_pages_allow_only_their_own_scripts_and_styles(login, make_case, patient):
    case = make_case(patient)
    client = login(patient)
    for url in (reverse("pages:home"), reverse("cases:results", args=[case.public_id])):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


def test_the_admin_gets_its_inline_scripts_and_files_keep_their_sandbox(
    login, admin, make_case, patient
):
    assert "'unsafe-inline'" in login(admin).get("/admin/")["Content-Security-Policy"]
    case = make_case(patient)
    photo = api_client(patient).get(
        reverse("api:case-image", args=[case.public_id]), HTTP_ACCEPT="image/*"
    )
    assert photo["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_live_server_on_its_own_port_is_the_only_other_place_pages_connect_to(
    login, make_case, patient, settings
):
    case = make_case(patient)
    client = login(patient)
    page = client.get(reverse("cases:results", args=[case.public_id]))
    assert "connect-src 'self';" in page["Content-Security-Policy"]
    assert b"data-live-port" not in page.content

    settings.LIVE_PORT = 8001
    page = client.get(reverse("cases:results", args=[case.public_id]), HTTP_HOST="localhost:8000")
    policy = page["Content-Security-Policy"]
    assert "connect-src 'self' ws://localhost:8001 wss://localhost:8001;" in policy
    assert b'data-live-port="8001"' in page.content
