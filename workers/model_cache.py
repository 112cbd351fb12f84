"""Per-process cache of the active model, keyed by model version.

Each worker child loads the bundle once (lazily, after fork), keeps it for every following job, and swaps it
when an admin activates another version. Bundles are fetched from object storage, checked against the
registry's sha256, unpacked and verified file by file before Keras sees them.
"""

import hashlib
import logging
import shutil
import threading
from pathlib import Path

from django.conf import settings

from ml.manifest import BundleError, unpack_bundle
from webapp.cases import storage
from webapp.modelops.models import ModelVersion

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: dict[int, object] = {}


class ModelUnavailable(RuntimeError):
    """The active model's bundle is missing or does not match its registry entry; jobs wait."""


def _download_verified(version: ModelVersion) -> Path:
    target = Path(settings.MODEL_CACHE_DIR) / f"{version.name}-{version.sha256[:16]}"
    if (target / "manifest.json").exists():
        return target
    Path(settings.MODEL_CACHE_DIR).mkdir(parents=True, exist_ok=True)
    try:
        data = storage.read_bytes(version.bundle_key)
    except storage.StorageUnavailable as exc:
        raise ModelUnavailable(f"bundle {version.bundle_key} could not be read: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != version.sha256:
        raise ModelUnavailable(
            f"bundle {version.bundle_key} has sha256 {digest}, the registry expects {version.sha256}"
        )
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    zip_path = staging / "bundle.zip"
    zip_path.write_bytes(data)
    try:
        unpack_bundle(zip_path, staging / "bundle")
    except BundleError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelUnavailable(f"bundle {version.name} refused: {exc}") from exc
    # Rename is atomic: concurrent children never see a half-unpacked bundle.
    try:
        (staging / "bundle").rename(target)
    except OSError:
        if not (target / "manifest.json").exists():
            raise
    shutil.rmtree(staging, ignore_errors=True)
    return target


def get_predictor(version: ModelVersion):
    """The loaded predictor for `version`, loading (and dropping any other version) on first use."""
    with _lock:
        predictor = _loaded.get(version.pk)
        if predictor is not None:
            return predictor
        bundle_dir = _download_verified(version)
        from ml.predict import Predictor  # TensorFlow is imported here, in the child process

        try:
            predictor = Predictor.from_bundle(bundle_dir)
        except BundleError as exc:
            raise ModelUnavailable(f"bundle {version.name} refused: {exc}") from exc
        predictor.warm_up()
        _loaded.clear()
        _loaded[version.pk] = predictor
        logger.info("loaded model %s (%s)", version.name, version.architecture)
        return predictor


def loaded_versions() -> list[int]:
    return list(_loaded)
