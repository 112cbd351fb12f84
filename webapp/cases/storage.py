"""Object-storage access for case images and results. Keys are always generated here, never taken from users."""

import json
import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages

logger = logging.getLogger(__name__)


class StorageUnavailable(RuntimeError):
    """The object store could not be reached or refused the request; the caller answers 503."""


STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


def new_image_key(extension: str) -> str:
    return f"cases/images/{uuid.uuid4().hex}.{extension}"


def result_key_for(case_public_id, model_version_name: str) -> str:
    return f"cases/results/{case_public_id}/{model_version_name}.json"


def put_bytes(key: str, content: bytes) -> str:
    try:
        stored = default_storage.save(key, ContentFile(content))
    except STORAGE_ERRORS as exc:
        logger.warning("object store write failed for a case object: %s", type(exc).__name__)
        raise StorageUnavailable(
            "The image store is unavailable; please try again shortly."
        ) from exc
    if stored != key:
        # A generated key that already exists means a collision we must not hide.
        delete_quietly(stored)
        raise StorageUnavailable("Could not store the image under a fresh key; please try again.")
    return stored


def put_json(key: str, payload: dict) -> str:
    """Overwrites: results are keyed by case and model version, so a retry writes the same object."""
    data = json.dumps(payload, indent=2, sort_keys=True).encode()
    try:
        storages["results"].save(key, ContentFile(data))
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable("The result store is unavailable.") from exc
    return key


def read_bytes(key: str) -> bytes:
    try:
        with default_storage.open(key, "rb") as fh:
            return fh.read()
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable(
            "The image store is unavailable; please try again shortly."
        ) from exc


def delete_quietly(key: str) -> None:
    try:
        default_storage.delete(key)
    except STORAGE_ERRORS:
        logger.exception("could not delete orphan object %s", key)
