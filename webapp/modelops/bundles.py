"""Registered bundles on local disk: fetched from object storage once, checked, unpacked, verified.

Inference workers (per-process model cache) and training workers (evaluating the active model, or a
candidate) read bundles only through here. Pure Python: Keras first sees a bundle after this module has
checked the zip against the registry's sha256 and every file against the manifest.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings

from ml.bundle import BundleError, file_sha256, unpack_bundle
from webapp.modelops.models import ModelVersion
from webapp.storage import store


class ModelUnavailable(RuntimeError):
    """A registered bundle is missing or does not match its registry entry; jobs wait for a good one."""


def _cache_dir(version: ModelVersion) -> Path:
    return Path(settings.MODEL_CACHE_DIR) / f"{version.name}-{version.sha256[:16]}"


def bundle_fetch_verified(version: ModelVersion) -> Path:
    """A verified local copy of ``version``'s bundle directory, downloaded on first use."""
    target = _cache_dir(version)
    if (target / "manifest.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex[:8]}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        zip_path = staging / "bundle.zip"
        try:
            store.download(version.bundle_key, zip_path, what=f"model bundle {version.name}")
        except store.StorageUnavailable as exc:
            raise ModelUnavailable(str(exc)) from exc
        digest = file_sha256(zip_path)
        if digest != version.sha256:
            raise ModelUnavailable(
                f"model bundle {version.name} ({version.bundle_key}) has sha256 {digest}, "
                f"the registry expects {version.sha256}"
            )
        try:
            unpack_bundle(zip_path, staging / "bundle")
        except BundleError as exc:
            raise ModelUnavailable(f"model bundle {version.name} refused: {exc}") from exc
        # Rename is atomic: concurrent processes never see a half-unpacked bundle.
        try:
            (staging / "bundle").rename(target)
        except OSError:
            if not (target / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
