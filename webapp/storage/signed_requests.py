"""The object store's hot path: the signed GET and PUT that every photo costs, sent without boto3.

Each upload writes its photo, and each classification reads it and writes a result: three calls per
photo. Through a boto3 client each of them cost about 3 ms of CPU on the development machine (its
event hooks, endpoint rules, checksums and response parsing) against about 1.4 ms for the same
request signed by botocore's own SigV4 signer and sent over a kept urllib3 pool
(docs/performance.md). Everything else (listing, deleting, streamed bundles, bucket administration)
stays on boto3.

Failures look like boto3's: an answer with an error status raises botocore's ``ClientError`` with
the S3 error code, and a transport failure raises urllib3's ``HTTPError``, so ``store`` maps both
as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import certifi
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

# As boto3 is configured here (two attempts): one more try when the store answers 5xx or a
# connection drops before anything was read.
_RETRY = urllib3.Retry(
    total=1,
    backoff_factor=0.05,
    status_forcelist=(500, 502, 503, 504),
    allowed_methods=frozenset({"GET", "PUT"}),
    raise_on_status=False,
)
_TIMEOUT = urllib3.Timeout(connect=10, read=60)
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_ERROR_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host[:port], without a path
    bucket: str
    access_key: str
    secret_key: str
    region: str

    @classmethod
    def of(
        cls, endpoint_url: str | None, bucket: str, access_key: str, secret_key: str, region: str
    ) -> Endpoint:
        # No endpoint configured: AWS itself, as boto3 would resolve it for path-style requests.
        url = (endpoint_url or f"https://s3.{region}.amazonaws.com").rstrip("/")
        return cls(url, bucket, access_key, secret_key, region)


class SignedClient:
    """Path-style GET and PUT of whole objects (as the boto3 client is configured), thread-safe;
    `store` keeps one per process."""

    def __init__(self, endpoint: Endpoint, *, pool_size: int = 8) -> None:
        self.endpoint = endpoint
        self._signer = S3SigV4Auth(
            Credentials(endpoint.access_key, endpoint.secret_key), "s3", endpoint.region
        )
        # certifi's roots, as botocore verifies TLS by default.
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            block=False,
            ca_certs=certifi.where(),
            retries=_RETRY,
            timeout=_TIMEOUT,
        )

    def _url(self, key: str) -> str:
        return f"{self.endpoint.url}/{quote(self.endpoint.bucket)}/{quote(key, safe='/~')}"

    def _send(self, method: str, key: str, body: bytes = b"", headers: dict | None = None):
        url = self._url(key)
        request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
        # Over TLS the payload goes unsigned, as boto3 sends it; over plain HTTP it is hashed.
        request.context["payload_signing_enabled"] = False
        self._signer.add_auth(request)
        response = self._pool.request(
            method, url, body=body or None, headers=dict(request.headers.items())
        )
        if response.status >= 300:
            raise _client_error(method, response)
        return response

    def get(self, key: str) -> bytes:
        return self._send("GET", key).data

    def put(self, key: str, body: bytes, *, content_type: str, only_if_new: bool = False) -> None:
        headers = {"Content-Type": content_type}
        if only_if_new:
            headers["If-None-Match"] = "*"
        self._send("PUT", key, body, headers)


def _client_error(method: str, response) -> ClientError:
    code = _ERROR_CODE.search(response.data or b"")
    message = _ERROR_MESSAGE.search(response.data or b"")
    error = {
        "Code": code.group(1).decode() if code else str(response.status),
        "Message": message.group(1).decode() if message else response.reason or "",
    }
    parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": response.status}}
    return ClientError(parsed, f"{method}Object")
