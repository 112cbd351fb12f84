"""Behind the container image's proxy, the audit log and the login throttle see the client's address."""

from webapp.config.proxy import ForwardedFor


def remote_addr_seen(environ: dict, settings, trusted: list[str]) -> str:
    settings.FORWARDED_ALLOW_IPS = trusted
    seen = {}

    def app(environ, start_response):
        seen["addr"] = environ["REMOTE_ADDR"]
        return []

    ForwardedFor(app)(dict(environ), lambda *a: None)
    return seen["addr"]


def test_a_trusted_proxy_names_the_client_with_the_address_it_appended(settings):
    environ = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}
    # The leftmost entry came from the client itself and is not believed.
    assert remote_addr_seen(environ, settings, ["10.0.0.2"]) == "203.0.113.7"
    assert remote_addr_seen(environ, settings, ["*"]) == "203.0.113.7"


def test_an_untrusted_sender_cannot_choose_its_address(settings):
    environ = {"REMOTE_ADDR": "198.51.100.9", "HTTP_X_FORWARDED_FOR": "10.0.0.1"}
    assert remote_addr_seen(environ, settings, ["127.0.0.1"]) == "198.51.100.9"
    assert remote_addr_seen({"REMOTE_ADDR": "127.0.0.1"}, settings, ["127.0.0.1"]) == "127.0.0.1"
