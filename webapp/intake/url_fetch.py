"""Fetch an image URL given by a user without letting it reach anything internal (SSRF defence;
which addresses are refused is ``webapp.intake.addresses``).

Rules, each for a known way around naive checks:

* Only ``http`` and ``https``: ``file://``, ``gopher://``, ``ftp://`` and friends read local files
  or talk raw protocols to internal services.
* No ``user:pass@`` in the URL: parsers disagree on where the host starts in such URLs.
* The host is resolved once, every address it resolves to is checked, and the connection goes to
  the checked address with the original name only in the Host header and TLS SNI. A resolver that
  answers "public" to the check and "127.0.0.1" to the connection (DNS rebinding) gets nowhere.
* Loopback, private, link-local (cloud metadata at 169.254.169.254), shared (100.64/10),
  multicast, reserved, unspecified, documentation and site-local ranges are refused, also when
  written as IPv4-mapped, IPv4-compatible, 6to4, NAT64 or Teredo IPv6, or as the integer, octal,
  hex and short IPv4 forms that ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``127.1``).
* Redirects are followed by hand, a few at most, and every hop goes through the same checks.
* Bodies are streamed and cut off past the size limit; one deadline covers resolving, connecting,
  waiting and reading across all hops.
* urllib3 pools are used directly: unlike ``requests`` they never pick up proxies from the
  environment, so nothing but the checked address is ever contacted.
* Messages to the user say what was wrong but never echo internal addresses, ports or the remote
  server's error body.

``allowed_networks`` lets tests and closed deployments reach chosen private ranges on purpose.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from webapp.intake.addresses import (
    NOT_REACHABLE,
    IPAddress,
    IPNetwork,
    UrlRejected,
    check_address,
    is_forbidden_address,
    literal_address,
)
from webapp.intake.imaging import format_megabytes

__all__ = ["FetchedFile", "UrlRejected", "fetch_url"]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_MAX_URL_LENGTH = 2048

_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
    r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)
# Whitespace, control characters and backslashes: browsers and parsers disagree about them.
_BAD_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class _Deadline(Exception):
    """Internal: the overall time budget ran out."""


@dataclass(frozen=True)
class FetchedFile:
    content: bytes
    final_url: str
    content_type_header: str | None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII, lower case, no brackets
    port: int
    literal: IPAddress | None  # set when the URL names an address instead of a host name
    host_header: str
    request_target: str  # path and query as sent on the request line
    url: str  # without the fragment


# --- URL parsing ----------------------------------------------------------------------------------


def _parse(url: str) -> _Target:
    if not isinstance(url, str) or not url:
        raise UrlRejected("Enter the URL of an image.")
    if len(url) > _MAX_URL_LENGTH:
        raise UrlRejected(f"The URL is longer than {_MAX_URL_LENGTH} characters.")
    if _BAD_URL_CHARACTERS.search(url):
        raise UrlRejected("The URL contains spaces, backslashes or control characters.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise UrlRejected("Only http and https URLs are accepted.")
        if "@" in parts.netloc:
            raise UrlRejected("URLs with a user name or password are not accepted.")
        raw_host = parts.hostname
        port = parts.port
    except UrlRejected:
        raise
    except ValueError as exc:  # bad brackets, non-numeric or out-of-range port
        raise UrlRejected("The URL is not valid.") from exc
    if not raw_host:
        raise UrlRejected("The URL has no host name.")
    if port == 0:
        raise UrlRejected("The URL is not valid.")
    port = port or _DEFAULT_PORTS[scheme]

    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UrlRejected("The URL's host name is not valid.") from exc
    literal, unusual = literal_address(host)
    if literal is None and not _HOSTNAME.fullmatch(host):
        raise UrlRejected("The URL's host name is not valid.")
    if unusual:
        # The address is checked first so that loopback in disguise gets the same answer as
        # plain loopback; a public address in disguise is still refused, since nobody writes
        # a legitimate image link like that and other parsers might read it differently.
        if is_forbidden_address(literal):
            raise UrlRejected(NOT_REACHABLE)
        raise UrlRejected("Write the URL's host as a name or a normal IP address.")
    if literal is None and (host.removesuffix(".") == "localhost" or host.endswith(".localhost")):
        raise UrlRejected(NOT_REACHABLE)

    name_in_header = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
    host_header = name_in_header if port == _DEFAULT_PORTS[scheme] else f"{name_in_header}:{port}"
    # Non-ASCII in the path would make http.client fail; percent-encode it, keep what is there.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    request_target = f"{path}?{query}" if query else path
    return _Target(
        scheme=scheme,
        host=host,
        port=port,
        literal=literal,
        host_header=host_header,
        request_target=request_target,
        url=urlunsplit((scheme, parts.netloc, parts.path, parts.query, "")),
    )


# --- resolving ------------------------------------------------------------------------------------


def _system_resolve(host: str, port: int, timeout: float) -> list[str]:
    # getaddrinfo cannot be given a timeout; run it aside so a slow DNS server cannot hold the
    # request past its deadline (the lookup thread finishes on its own later).
    outcome: dict[str, object] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name="url-fetch-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Deadline
    if "error" in outcome:
        raise UrlRejected("The host name could not be found.")
    infos = outcome["infos"]
    return [info[4][0] for info in infos]  # type: ignore[attr-defined]


def _addresses(
    target: _Target,
    resolver: Resolver | None,
    allowed_networks: Sequence[IPNetwork],
    deadline: float,
) -> list[IPAddress]:
    if target.literal is not None:
        return [check_address(target.literal, allowed_networks)]
    if resolver is None:
        names = _system_resolve(target.host, target.port, _remaining(deadline))
    else:
        try:
            names = list(resolver(target.host, target.port))
        except OSError as exc:
            raise UrlRejected("The host name could not be found.") from exc
    if not names:
        raise UrlRejected("The host name could not be found.")
    # Every address must pass: a connection attempt may fall through to any of them.
    checked: list[IPAddress] = []
    for name in names:
        address = check_address(name, allowed_networks)
        if address not in checked:
            checked.append(address)
    return checked


# --- fetching -------------------------------------------------------------------------------------


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Deadline
    return left


def _open(
    target: _Target, address: IPAddress, deadline: float, user_agent: str
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    remaining = _remaining(deadline)
    timeout = urllib3.Timeout(connect=remaining, read=remaining)
    common = {"timeout": timeout, "retries": False, "maxsize": 1, "block": False}
    if target.scheme == "https":
        # Connect to the checked address but verify the certificate against the name the user
        # gave, and send that name as SNI.
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            **common,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), target.port, **common)
    try:
        response = pool.urlopen(
            "GET",
            target.request_target,
            headers={
                "Host": target.host_header,
                "User-Agent": user_agent,
                "Accept": "image/jpeg, image/png, image/webp;q=0.9, */*;q=0.1",
                # A compressed body could inflate past the size limit; ask for none.
                "Accept-Encoding": "identity",
            },
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            release_conn=False,
        )
    except BaseException:
        pool.close()
        raise
    return pool, response


def _read_body(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    too_large = f"The file at that URL is larger than {format_megabytes(max_bytes)}."
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise UrlRejected(too_large)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UrlRejected("The server sent the file compressed, which is not accepted.")
    chunks: list[bytes] = []
    received = 0
    while True:
        # A server dripping one byte at a time never trips a per-read timeout; shrink the socket
        # timeout to what is left of the overall deadline before every read instead.
        remaining = _remaining(deadline)
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        received += len(chunk)
        if received > max_bytes:
            raise UrlRejected(too_large)
        chunks.append(chunk)


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 10.0,
    max_redirects: int = 3,
    allowed_networks: Sequence[IPNetwork] = (),
    resolver: Resolver | None = None,
    user_agent: str = "SkinSight/1.0",
) -> FetchedFile:
    """Download ``url`` under the SSRF rules above; raise :class:`UrlRejected` with a user message.

    ``resolver(host, port)`` returns the host's addresses as strings (default: getaddrinfo).
    ``timeout`` bounds the whole fetch: resolving, connecting and reading, over all redirects.
    """
    deadline = time.monotonic() + timeout
    seconds = f"{timeout:g} second" + ("" if timeout == 1 else "s")
    current = url
    waiting_for_body = False
    try:
        for _hop in range(max_redirects + 1):
            target = _parse(current)
            addresses = _addresses(target, resolver, allowed_networks, deadline)
            pool, response = _connect_any(target, addresses, deadline, user_agent)
            try:
                status = response.status
                if status in _REDIRECT_STATUSES and response.headers.get("Location"):
                    current = urljoin(target.url, response.headers["Location"])
                    continue
                if not 200 <= status < 300:
                    raise UrlRejected(f"The server answered {status}.")
                waiting_for_body = True
                content = _read_body(response, max_bytes, deadline)
                return FetchedFile(
                    content=content,
                    final_url=target.url,
                    content_type_header=response.headers.get("Content-Type"),
                )
            finally:
                response.close()
                pool.close()
        raise UrlRejected("The URL redirected too many times.")
    except NewConnectionError:
        # Listed before the timeouts: urllib3 makes it a subclass of ConnectTimeoutError.
        raise UrlRejected("Could not connect to the server.") from None
    except (_Deadline, ConnectTimeoutError, ReadTimeoutError, Urllib3TimeoutError, TimeoutError):
        if waiting_for_body:
            raise UrlRejected(f"The download did not finish within {seconds}.") from None
        raise UrlRejected(f"The server did not answer within {seconds}.") from None
    except SSLError:
        raise UrlRejected("The server's secure connection could not be verified.") from None
    except (ProtocolError, HTTPError, OSError):
        # Resets, malformed responses, bodies shorter than announced: the details are the
        # remote server's business and may name internal hosts.
        raise UrlRejected("The download failed; the server's answer could not be read.") from None


def _connect_any(
    target: _Target, addresses: list[IPAddress], deadline: float, user_agent: str
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    # All addresses passed the check; try them in the resolver's order, the way a browser falls
    # back from an unreachable IPv6 address to IPv4.
    *earlier, last = addresses
    for address in earlier:
        try:
            return _open(target, address, deadline, user_agent)
        except NewConnectionError:
            continue
    return _open(target, last, deadline, user_agent)
