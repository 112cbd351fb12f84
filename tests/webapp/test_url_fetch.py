"""SSRF payloads against webapp.intake.url_fetch with real listeners on loopback that count hits.

No test sends traffic anywhere but loopback: a guard wraps urllib3's connect and fails the test
before any other destination could be contacted, even if the code under test were wrong.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
import urllib3.util.connection

from webapp.intake import url_fetch
from webapp.intake.addresses import NOT_REACHABLE, UrlRejected, check_address, is_forbidden_address
from webapp.intake.url_fetch import FetchedFile, fetch_url

try:  # imported as a package when tests/ has __init__ files, as a top-level module otherwise
    from tests.webapp import imaging_samples as samples
except ImportError:  # pragma: no cover
    import imaging_samples as samples

PNG = samples.png()
MAX = 1024 * 1024
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]
SECRET = b"db01.internal.example:5432 password=hunter2"


# --- listeners -------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Host")))
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        route = url.path
        if route == "/image.png":
            self._send(200, PNG, "image/png")
        elif route == "/redirect":
            self.send_response(int(query.get("code", ["302"])[0]))
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route.startswith("/chain/"):
            left = int(route.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, PNG, "image/png")
            else:
                self.send_response(302)
                self.send_header("Location", f"/chain/{left - 1}")  # relative on purpose
                self.send_header("Content-Length", "0")
                self.end_headers()
        elif route == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(50 * MAX))
            self.end_headers()
            self._write_quietly(PNG)
        elif route == "/big-undeclared":
            # HTTP/1.0 style: no Content-Length, the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(200):
                if not self._write_quietly(b"\x00" * 65536):
                    break
        elif route == "/slow":
            self.server.stopping.wait(3)
            self._send(200, PNG, "image/png")
        elif route == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if not self._write_quietly(b"\x00") or self.server.stopping.wait(0.05):
                    break
        elif route == "/gzip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self._write_quietly(PNG)
        elif route == "/short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG) + 100))
            self.end_headers()
            self._write_quietly(PNG)
        elif route == "/error":
            self._send(int(query["code"][0]), SECRET, "text/plain")
        else:
            self._send(404, SECRET, "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write_quietly(body)

    def _write_quietly(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client hung up on purpose (size or time limit)
            return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, family):
        self.address_family = family
        self.hits = 0  # TCP connections accepted, whether or not a request followed
        self.requests: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def verify_request(self, request, client_address):
        self.hits += 1
        return True


class Listener:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.server = _Server((host, port), family)
        self.host = host
        self.port = self.server.server_address[1]
        # A short poll interval keeps shutdown() fast; the default 0.5 s adds up over the tests.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def hits(self) -> int:
        return self.server.hits

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.server.requests

    def url(self, path: str = "/image.png") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _listener_or_skip(host: str, port: int = 0) -> Listener:
    try:
        return Listener(host, port)
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}:{port}: {exc}")


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def forbidden_listener() -> Iterator[Listener]:
    """A second listener on 127.0.0.2, outside the allowed 127.0.0.1/32."""
    server = _listener_or_skip("127.0.0.2")
    yield server
    server.close()


@pytest.fixture(autouse=True)
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Every address urllib3 connects to; anything but loopback fails the test before connecting."""
    made: list[tuple[str, int]] = []
    original = urllib3.util.connection.create_connection

    def guarded(address, *args, **kwargs):
        host, port = address
        assert ipaddress.ip_address(host.strip("[]")).is_loopback, f"non-loopback: {host}"
        made.append((host, port))
        return original(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return made


def resolving_to(*addresses: str):
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolver.calls = calls
    return resolver


def assert_says_nothing_internal(message: str, *ports: int) -> None:
    for leak in ("127.", "::1", "10.0.", "169.254", "192.0.2", "localhost", "internal", "hunter2"):
        assert leak not in message
    for port in ports:
        assert str(port) not in message


# --- SSRF payloads: all refused, zero hits ---------------------------------------------------------


def _payloads(port: int) -> list[tuple[str, object]]:
    """(url, resolver) pairs; resolver None means the system resolver."""
    name = f"images.example.test:{port}"

    def rebinding():
        answers = iter([["192.0.2.10"], ["127.0.0.1"]])
        return lambda host, p: next(answers, ["127.0.0.1"])

    return [
        (f"http://127.0.0.1:{port}/image.png", None),
        (f"http://localhost:{port}/image.png", None),
        (f"http://LOCALHOST.:{port}/image.png", None),
        (f"http://app.localhost:{port}/image.png", None),
        (f"http://[::1]:{port}/image.png", None),
        (f"http://2130706433:{port}/image.png", None),
        (f"http://0x7f000001:{port}/image.png", None),
        (f"http://0x7f.1:{port}/image.png", None),
        (f"http://017700000001:{port}/image.png", None),
        (f"http://0177.0.0.1:{port}/image.png", None),
        (f"http://127.1:{port}/image.png", None),
        (f"http://127.0.1:{port}/image.png", None),
        (f"http://127.0.0.1.:{port}/image.png", None),
        (f"http://127.000.000.001:{port}/image.png", None),
        (f"http://0X7F.0x0.0x0.0x1:{port}/image.png", None),
        # Full-width digits and a circled "l": IDNA folds them into 127.0.0.1 and localhost.
        (f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/image.png", None),
        (f"http://\u24dbocalhost:{port}/image.png", None),
        (f"http://[::ffff:127.0.0.1]:{port}/image.png", None),
        (f"http://[::ffff:7f00:1]:{port}/image.png", None),
        (f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/image.png", None),
        (f"http://[::127.0.0.1]:{port}/image.png", None),
        (f"http://[::ffff:0:127.0.0.1]:{port}/image.png", None),
        (f"http://[64:ff9b::127.0.0.1]:{port}/image.png", None),
        (f"http://[2002:7f00:1::1]:{port}/image.png", None),
        (f"http://0.0.0.0:{port}/image.png", None),
        (f"http://0:{port}/image.png", None),
        (f"http://[::]:{port}/image.png", None),
        (f"http://10.0.0.1:{port}/image.png", None),
        (f"http://169.254.169.254:{port}/latest/meta-data/", None),
        (f"http://100.64.0.1:{port}/image.png", None),
        (f"http://[fe80::1]:{port}/image.png", None),
        (f"http://[fd00::1]:{port}/image.png", None),
        (f"http://[fec0::1]:{port}/image.png", None),
        (f"http://224.0.0.1:{port}/image.png", None),
        (f"http://255.255.255.255:{port}/image.png", None),
        ("file:///etc/passwd", None),
        ("file://localhost/etc/passwd", None),
        (f"gopher://127.0.0.1:{port}/_GET%20/image.png", None),
        (f"ftp://127.0.0.1:{port}/image.png", None),
        (f"dict://127.0.0.1:{port}/info", None),
        (f"HTTP://127.0.0.1:{port}/image.png", None),
        (f"http://user:pass@127.0.0.1:{port}/image.png", None),
        (f"http://user:pass@{name}/image.png", resolving_to("93.184.216.34")),
        (f"http://images.example.test@127.0.0.1:{port}/image.png", None),
        (f"http://127.0.0.1:{port}\\@images.example.test/image.png", None),
        (f"http://127.0.0.1:{port}%2f@images.example.test/image.png", None),
        (f"http://{name}/image.png", resolving_to("127.0.0.1")),
        (f"http://{name}/image.png", resolving_to("10.0.0.1")),
        (f"http://{name}/image.png", resolving_to("169.254.169.254")),
        (f"http://metadata.google.internal:{port}/", resolving_to("169.254.169.254")),
        (f"http://{name}/image.png", resolving_to("192.0.2.10")),
        (f"http://{name}/image.png", resolving_to("::1")),
        (f"http://{name}/image.png", resolving_to("::ffff:127.0.0.1")),
        (f"http://{name}/image.png", resolving_to("fe80::1%1")),
        # One good address does not excuse a bad one: every answer is checked.
        (f"http://{name}/image.png", resolving_to("93.184.216.34", "127.0.0.1")),
        (f"http://{name}/image.png", resolving_to("not-an-address")),
        (f"http://{name}/image.png", rebinding()),
        (f"http://127.0.0.1.nip.io:{port}/image.png", resolving_to("127.0.0.1")),
    ]


def test_every_ssrf_payload_is_refused_and_the_listeners_see_nothing(listener, record_property):
    # Also listen on ::1 at the same port when this machine can, so IPv6 payloads could land.
    v6 = None
    with contextlib.suppress(OSError):
        v6 = Listener("::1", listener.port)
    try:
        payloads = _payloads(listener.port)
        blocked = 0
        for url, resolver in payloads:
            with pytest.raises(UrlRejected) as caught:
                fetch_url(url, max_bytes=MAX, timeout=2, resolver=resolver)
            assert_says_nothing_internal(str(caught.value), listener.port)
            blocked += 1
        hits = listener.hits + (v6.hits if v6 else 0)
        # The figures docs/reliability.md reports (`python -m bench.reliability` reads them).
        record_property("ssrf_tried", len(payloads))
        record_property("ssrf_blocked", blocked)
        record_property("ssrf_listener_hits", hits)
        assert blocked == len(payloads) >= 50
        assert hits == 0
    finally:
        if v6:
            v6.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "Only http and https URLs are accepted."),
        ("gopher://example.com/", "Only http and https URLs are accepted."),
        ("ftp://example.com/a.png", "Only http and https URLs are accepted."),
        ("javascript:alert(1)", "Only http and https URLs are accepted."),
        ("//example.com/a.png", "Only http and https URLs are accepted."),
        ("http://user:pass@example.com/", "URLs with a user name or password are not accepted."),
        ("http://127.0.0.1/", NOT_REACHABLE),
        ("http://2130706433/", NOT_REACHABLE),
        ("http://1572395042/", "Write the URL's host as a name or a normal IP address."),
        ("http:///a.png", "The URL has no host name."),
        ("http://exa mple.com/", "The URL contains spaces, backslashes or control characters."),
        ("http://example.com:99999/", "The URL is not valid."),
        ("http://[zz]/", "The URL is not valid."),
        ("http://bad..name/", "The URL's host name is not valid."),
        ("", "Enter the URL of an image."),
        ("http://example.com/" + "a" * 3000, "The URL is longer than 2048 characters."),
    ],
)
def test_rejection_messages(url, message):
    resolver = resolving_to("192.0.2.1")
    with pytest.raises(UrlRejected) as caught:
        fetch_url(url, max_bytes=MAX, resolver=resolver)
    assert str(caught.value) == message
    assert resolver.calls == []  # refused before any lookup


def test_unknown_host_name():
    def failing(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UrlRejected, match=r"^The host name could not be found\.$"):
        fetch_url("http://images.example.test/a.png", max_bytes=MAX, resolver=failing)
    with pytest.raises(UrlRejected, match=r"^The host name could not be found\.$"):
        fetch_url("http://images.example.test/a.png", max_bytes=MAX, resolver=lambda h, p: [])


# --- the address checker alone (no connection anywhere) --------------------------------------------


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450::1"]
)
def test_public_addresses_pass_the_check(address):
    assert check_address(address) == ipaddress.ip_address(address)
    assert not is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "0.1.2.3",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "::ffff:0:127.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b:1::1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:db8::1",
        "100::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "not an address",
    ],
)
def test_forbidden_addresses_fail_the_check(address):
    with pytest.raises(UrlRejected, match=f"^{NOT_REACHABLE}$"):
        check_address(address)


def test_allowed_networks_open_only_what_they_name():
    networks = [ipaddress.ip_network("10.20.0.0/16")]
    assert check_address("10.20.3.4", networks) == ipaddress.ip_address("10.20.3.4")
    with pytest.raises(UrlRejected):
        check_address("10.21.3.4", networks)
    with pytest.raises(UrlRejected):
        check_address("127.0.0.1", networks)


# --- allowed fetches and what happens on the way ---------------------------------------------------


def test_fetches_a_png_from_an_allowed_address(listener, connections):
    fetched = fetch_url(listener.url(), max_bytes=MAX, allowed_networks=LOOPBACK)
    assert fetched == FetchedFile(
        content=PNG, final_url=listener.url(), content_type_header="image/png"
    )
    assert connections == [("127.0.0.1", listener.port)]
    assert listener.requests == [("/image.png", f"127.0.0.1:{listener.port}")]


def test_connects_to_the_checked_address_with_the_name_in_the_host_header(listener, connections):
    resolver = resolving_to("127.0.0.1")
    url = f"http://Images.Example.Test:{listener.port}/image.png?size=large"
    fetched = fetch_url(url, max_bytes=MAX, allowed_networks=LOOPBACK, resolver=resolver)
    assert fetched.content == PNG
    assert resolver.calls == ["images.example.test"]
    assert connections == [("127.0.0.1", listener.port)]
    assert listener.requests == [("/image.png?size=large", f"images.example.test:{listener.port}")]


def test_dns_rebinding_cannot_move_the_connection(listener, connections):
    # The name resolves to the allowed listener once, then to a forbidden one on the same port.
    other = _listener_or_skip("127.0.0.2", listener.port)
    try:
        answers = iter([["127.0.0.1"]])
        calls = []

        def rebinding(host, port):
            calls.append(host)
            return next(answers, ["127.0.0.2"])

        url = f"http://images.example.test:{listener.port}/image.png"
        fetched = fetch_url(url, max_bytes=MAX, allowed_networks=LOOPBACK, resolver=rebinding)
        assert fetched.content == PNG
        assert calls == ["images.example.test"]  # resolved once, not again at connect time
        assert connections == [("127.0.0.1", listener.port)]
        assert listener.hits == 1
        assert other.hits == 0
    finally:
        other.close()


def test_falls_back_to_the_next_checked_address_when_one_refuses(listener, connections):
    # The listener is bound to 127.0.0.1 only, so 127.0.0.3 on the same port refuses.
    resolver = resolving_to("127.0.0.3", "127.0.0.1")
    url = f"http://images.example.test:{listener.port}/image.png"
    networks = [ipaddress.ip_network("127.0.0.0/8")]
    fetched = fetch_url(url, max_bytes=MAX, allowed_networks=networks, resolver=resolver)
    assert fetched.content == PNG
    assert [host for host, _ in connections] == ["127.0.0.3", "127.0.0.1"]


def test_redirects_are_followed_and_each_hop_rechecked(listener):
    fetched = fetch_url(
        listener.url("/chain/3"), max_bytes=MAX, max_redirects=3, allowed_networks=LOOPBACK
    )
    assert fetched.content == PNG
    assert fetched.final_url == listener.url("/chain/0")
    assert [path for path, _ in listener.requests] == [f"/chain/{n}" for n in (3, 2, 1, 0)]


def test_too_many_redirects_are_refused(listener):
    with pytest.raises(UrlRejected, match=r"^The URL redirected too many times\.$"):
        fetch_url(
            listener.url("/chain/4"), max_bytes=MAX, max_redirects=3, allowed_networks=LOOPBACK
        )
    assert len(listener.requests) == 4  # the first request and three redirects, no more
    with pytest.raises(UrlRejected, match="redirected too many times"):
        fetch_url(
            listener.url("/chain/1"), max_bytes=MAX, max_redirects=0, allowed_networks=LOOPBACK
        )


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_to_a_forbidden_address_is_refused(listener, forbidden_listener, code):
    target = forbidden_listener.url()
    with pytest.raises(UrlRejected) as caught:
        fetch_url(
            listener.url(f"/redirect?code={code}&to={target}"),
            max_bytes=MAX,
            allowed_networks=LOOPBACK,
        )
    assert str(caught.value) == NOT_REACHABLE
    assert listener.hits == 1
    assert forbidden_listener.hits == 0


@pytest.mark.parametrize(
    "target",
    [
        "http://internal.example.test:{port}/image.png",  # a name that resolves inside
        "http://2130706433:{port}/image.png",
        "file:///etc/passwd",
        "http://user:pass@127.0.0.2:{port}/",
    ],
)
def test_redirect_hops_get_every_check(listener, forbidden_listener, target):
    def resolver(host, port):
        return ["127.0.0.2"]  # only reached for the redirect target

    target = target.format(port=forbidden_listener.port)
    with pytest.raises(UrlRejected) as caught:
        fetch_url(
            listener.url(f"/redirect?to={target}"),
            max_bytes=MAX,
            allowed_networks=LOOPBACK,
            resolver=resolver,
        )
    assert_says_nothing_internal(str(caught.value), listener.port, forbidden_listener.port)
    assert forbidden_listener.hits == 0


def test_oversized_body_with_content_length_is_refused_before_reading(listener):
    with pytest.raises(UrlRejected, match=r"^The file at that URL is larger than 20 MB\.$"):
        fetch_url(listener.url("/big-declared"), max_bytes=20 * MAX, allowed_networks=LOOPBACK)


def test_oversized_body_without_content_length_is_cut_off(listener):
    started = time.monotonic()
    with pytest.raises(UrlRejected, match=r"^The file at that URL is larger than 0.1 MB\.$"):
        fetch_url(
            listener.url("/big-undeclared"),
            max_bytes=MAX // 10,
            allowed_networks=LOOPBACK,
        )
    assert time.monotonic() - started < 2


def test_slow_server_times_out(listener):
    started = time.monotonic()
    with pytest.raises(UrlRejected, match=r"^The server did not answer within 0.5 seconds\.$"):
        fetch_url(listener.url("/slow"), max_bytes=MAX, timeout=0.5, allowed_networks=LOOPBACK)
    assert time.monotonic() - started < 1.5


def test_dripping_body_hits_the_total_time_cap(listener):
    # Each byte arrives well within any per-read timeout; only a total cap stops this.
    started = time.monotonic()
    with pytest.raises(UrlRejected, match=r"^The download did not finish within 0.5 seconds\.$"):
        fetch_url(listener.url("/drip"), max_bytes=MAX, timeout=0.5, allowed_networks=LOOPBACK)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("code", [404, 403, 500, 502])
def test_error_status_is_reported_by_code_only(listener, code):
    path = "/missing" if code == 404 else f"/error?code={code}"
    with pytest.raises(UrlRejected) as caught:
        fetch_url(listener.url(path), max_bytes=MAX, allowed_networks=LOOPBACK)
    assert str(caught.value) == f"The server answered {code}."


def test_redirect_without_location_is_an_error_status(listener):
    with pytest.raises(UrlRejected, match=r"^The server answered 302\.$"):
        fetch_url(listener.url("/redirect?to="), max_bytes=MAX, allowed_networks=LOOPBACK)


def test_compressed_body_is_refused(listener):
    with pytest.raises(UrlRejected, match="compressed"):
        fetch_url(listener.url("/gzip"), max_bytes=MAX, allowed_networks=LOOPBACK)


def test_body_shorter_than_announced_is_refused(listener):
    with pytest.raises(UrlRejected, match="could not be read"):
        fetch_url(listener.url("/short"), max_bytes=MAX, allowed_networks=LOOPBACK)


def test_refused_connection_says_nothing_internal():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(UrlRejected) as caught:
        fetch_url(f"http://127.0.0.1:{port}/", max_bytes=MAX, allowed_networks=LOOPBACK)
    assert str(caught.value) == "Could not connect to the server."


def test_https_to_a_plain_http_server_fails_cleanly(listener):
    with pytest.raises(UrlRejected) as caught:
        fetch_url(
            f"https://127.0.0.1:{listener.port}/image.png",
            max_bytes=MAX,
            timeout=2,
            allowed_networks=LOOPBACK,
        )
    assert_says_nothing_internal(str(caught.value), listener.port)


def test_https_verifies_the_certificate_for_the_name_not_the_address(monkeypatch):
    seen = {}

    class FakePool:
        def __init__(self, host, port, **kwargs):
            seen.update(host=host, port=port, **kwargs)

        def urlopen(self, *args, **kwargs):
            seen["headers"] = kwargs["headers"]
            raise urllib3.exceptions.NewConnectionError(None, "refused")

        def close(self):
            pass

    monkeypatch.setattr(url_fetch.urllib3, "HTTPSConnectionPool", FakePool)
    with pytest.raises(UrlRejected, match="Could not connect"):
        fetch_url(
            "https://images.example.test/a.png",
            max_bytes=MAX,
            resolver=resolving_to("93.184.216.34"),
        )
    assert seen["host"] == "93.184.216.34"
    assert seen["port"] == 443
    assert seen["server_hostname"] == seen["assert_hostname"] == "images.example.test"
    assert seen["cert_reqs"] == "CERT_REQUIRED"
    assert seen["headers"]["Host"] == "images.example.test"


def test_proxy_settings_in_the_environment_are_ignored(listener, monkeypatch):
    proxy = Listener()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        fetched = fetch_url(listener.url(), max_bytes=MAX, allowed_networks=LOOPBACK)
        assert fetched.content == PNG
        assert proxy.hits == 0
    finally:
        proxy.close()


def test_one_deadline_covers_all_redirect_hops(listener):
    target = listener.url("/slow")
    started = time.monotonic()
    with pytest.raises(UrlRejected, match=r"did not answer within 0\.5 seconds"):
        fetch_url(
            listener.url(f"/redirect?to={target}"),
            max_bytes=MAX,
            timeout=0.5,
            allowed_networks=LOOPBACK,
        )
    assert time.monotonic() - started < 1.5
