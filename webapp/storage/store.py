"""The one owner of object storage: every key, read, write and the bucket itself.

Keys are always generated here, never taken from users. Every error names what was being read or written,
so "the model bundle is unreadable" is never reported as "the image store is unavailable". Two kinds of
write: `put_new` never overwrites (photos, bundles, snapshots: a key collision is an error, not a
replacement) and `put` rewrites in one PUT (results, logs and progress a retried job writes again).

One boto3 client per process, shared by its threads (boto3 clients are thread-safe): making one costs
100-300 ms of CPU, and Django under ASGI runs each request's sync code on a thread of its own, so a client
kept per thread (as django-storages keeps its resources, which SkinSight used before) was made again for
every upload. The whole-object GETs and PUTs that every photo costs go through `signed_requests` instead,
at half boto3's CPU per call.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import threading
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from urllib3.exceptions import HTTPError

from webapp.errors import Unavailable
from webapp.storage.signed_requests import Endpoint, SignedClient

logger = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, HTTPError, OSError)
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
# A conditional write found the key taken (AWS answers 412, or 409 for a concurrent one).
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class StorageUnavailable(Unavailable):
    """The object store could not be reached or refused the request; callers answer 503 or retry."""


class ObjectMissing(StorageUnavailable):
    """The key does not exist: waiting will not bring it back."""


# --- keys ---------------------------------------------------------------------------------------


def case_image_key(extension: str) -> str:
    return f"cases/images/{uuid.uuid4().hex}.{extension}"


def case_results_prefix(case_public_id) -> str:
    return f"cases/results/{case_public_id}/"


def case_result_key(case_public_id, model_version_name: str) -> str:
    return f"{case_results_prefix(case_public_id)}{model_version_name}.json"


def case_heatmap_key(case_public_id, model_version_name: str) -> str:
    # Under the case's results, so deleting the case deletes it too.
    return f"{case_results_prefix(case_public_id)}{model_version_name}-heatmap.png"


def rerun_result_key(rerun_public_id, case_public_id) -> str:
    return f"cases/reruns/{rerun_public_id}/{case_public_id}.json"


def model_bundle_key(name: str, digest: str) -> str:
    return f"models/{name}/{digest}.zip"


def model_bundle_prefix(name: str) -> str:
    return f"models/{name}/"


def model_import_key(import_public_id, filename: str) -> str:
    """Uploaded model files, kept only until the training worker has checked them."""
    return f"imports/{import_public_id}/{filename}"


def snapshot_key(digest: str) -> str:
    return f"datasets/snapshots/{digest}.json"


def evaluation_set_key(digest: str) -> str:
    return f"datasets/evaluation-sets/{digest}.json"


def external_image_key(sha256: str, suffix: str) -> str:
    """A photo of an external evaluation set, by content: registering it twice stores it once."""
    return f"datasets/external/images/{sha256[:2]}/{sha256}{suffix}"


def training_run_key(run_public_id, filename: str) -> str:
    return f"training/runs/{run_public_id}/{filename}"


def evaluation_report_key(version_name: str, evaluation_set_sha256: str, filename: str) -> str:
    return f"evaluations/{version_name}/{evaluation_set_sha256[:16]}/{filename}"


def dataset_object_key(prefix: str, relative: str) -> str:
    return f"{prefix.rstrip('/')}/{relative}" if prefix.strip("/") else relative


# --- reads and writes ---------------------------------------------------------------------------


def _failure(action: str, what: str, key: str, exc: Exception) -> StorageUnavailable:
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
        return ObjectMissing(f"{what} ({key}) does not exist in the object store.")
    if isinstance(exc, FileNotFoundError):
        return ObjectMissing(f"{what} ({key}) does not exist in the object store.")
    logger.warning("object store %s failed for %s: %s", action, what, type(exc).__name__)
    return StorageUnavailable(
        f"Could not {action} {what}: the object store is unavailable; please try again shortly."
    )


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _kept(kind: str, make):
    """This process's client of ``kind`` for the configured store, made by ``make`` the first time
    (a client inherited across fork, or made for other settings, is not reused)."""
    key = (
        kind,
        os.getpid(),
        settings.S3_ENDPOINT_URL,
        settings.S3_BUCKET,
        settings.S3_ACCESS_KEY_ID,
        settings.S3_SECRET_ACCESS_KEY,
        settings.S3_REGION,
    )
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key) or make(*key[2:])
            _clients[key] = client
    return client


def _client():
    """The boto3 client: listing, deleting, streamed writes and reads, the bucket."""
    return _kept("boto3", lambda url, bucket, *credentials: s3_client(url, *credentials))


def _signed() -> SignedClient:
    """The signed-request client: GET and PUT of whole objects."""
    return _kept("signed", lambda *config: SignedClient(Endpoint.of(*config)))


def prepare_client() -> None:
    """Make this process's client now rather than on the first request that needs it: boto3
    reads its service model from disk, tenths of a second of CPU."""
    _client()
    _signed()


def _bucket() -> str:
    return settings.S3_BUCKET


def put_new(key: str, content: bytes | BinaryIO, *, what: str) -> str:
    """Write a new object; a key that already exists is an error, never a replacement.

    One conditional PUT (``If-None-Match: *``): the store itself refuses an existing key,
    atomically, so no existence check (a second round trip, and a race) comes first.
    """
    if not isinstance(content, bytes):
        content.seek(0)
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    try:
        if isinstance(content, bytes):
            _signed().put(key, content, content_type=content_type, only_if_new=True)
        else:  # streamed from a file (bundles): boto3 reads it in parts
            _client().put_object(
                Bucket=_bucket(), Key=key, Body=content, IfNoneMatch="*", ContentType=content_type
            )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _EXISTS_CODES:
            raise StorageUnavailable(
                f"Could not store {what} under a fresh key; please try again."
            ) from exc
        raise _failure("store", what, key, exc) from exc
    except STORAGE_ERRORS as exc:
        raise _failure("store", what, key, exc) from exc
    return key


def put_file_new(key: str, path: str | os.PathLike, *, what: str) -> str:
    """``put_new`` streaming a local file (model bundles are too large to hold twice in memory)."""
    with open(path, "rb") as handle:
        return put_new(key, handle, what=what)


def put(key: str, content: bytes, *, what: str) -> str:
    """Write or rewrite an object in one PUT (results, logs: a retry writes the same key again)."""
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    try:
        _signed().put(key, content, content_type=content_type)
    except STORAGE_ERRORS as exc:
        raise _failure("store", what, key, exc) from exc
    return key


def put_json(key: str, payload, *, what: str) -> str:
    data = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False).encode()
    return put(key, data, what=what)


def read(key: str, *, what: str) -> bytes:
    try:
        return _signed().get(key)
    except STORAGE_ERRORS as exc:
        raise _failure("read", what, key, exc) from exc


def read_json(key: str, *, what: str):
    try:
        return json.loads(read(key, what=what))
    except ValueError as exc:
        raise StorageUnavailable(f"{what} ({key}) is not valid JSON: {exc}") from exc


def download(key: str, path: str | os.PathLike, *, what: str) -> None:
    """Stream an object into a local file."""
    try:
        with open(path, "wb") as sink:
            body = _client().get_object(Bucket=_bucket(), Key=key)["Body"]
            while chunk := body.read(1024 * 1024):
                sink.write(chunk)
    except STORAGE_ERRORS as exc:
        raise _failure("read", what, key, exc) from exc


def exists(key: str, *, what: str) -> bool:
    try:
        _client().head_object(Bucket=_bucket(), Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
            return False
        raise _failure("look up", what, key, exc) from exc
    except STORAGE_ERRORS as exc:
        raise _failure("look up", what, key, exc) from exc


def list_prefix(prefix: str, *, what: str) -> Iterator[tuple[str, int]]:
    """Every (key, size) below ``prefix``, in key order."""
    try:
        pages = _client().get_paginator("list_objects_v2").paginate(Bucket=_bucket(), Prefix=prefix)
        for page in pages:
            for summary in page.get("Contents", []):
                yield summary["Key"], summary["Size"]
    except STORAGE_ERRORS as exc:
        raise _failure("list", what, prefix, exc) from exc


def delete_quietly(key: str) -> None:
    try:
        _client().delete_object(Bucket=_bucket(), Key=key)
    except STORAGE_ERRORS:
        logger.exception("could not delete orphan object %s", key)


def delete_prefix_quietly(prefix: str) -> int:
    """Delete every object below ``prefix`` (a failed run's partial output); returns how many."""
    try:
        keys = [key for key, _ in list_prefix(prefix, what=f"objects below {prefix}")]
    except StorageUnavailable:
        logger.exception("could not list %s for clean-up", prefix)
        return 0
    for key in keys:
        delete_quietly(key)
    return len(keys)


# --- the bucket -----------------------------------------------------------------------------------


def s3_client(endpoint_url: str, access_key: str, secret_key: str, region: str = "us-east-1"):
    """A plain boto3 client, for bucket administration before Django's storage is configured
    (``S3_REGION`` in settings; a local S3 server ignores it)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def ensure_bucket(client, bucket: str) -> bool:
    """Create ``bucket`` if it is missing (private: no ACL, no policy); True when it was created."""
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket in names:
        return False
    client.create_bucket(Bucket=bucket)
    return True
