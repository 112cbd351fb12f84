"""Per-process cache of loaded models, keyed by model version.

Each worker child loads a bundle once (lazily, after fork), warms it up before it answers anything, and
keeps it for every following job. When an admin promotes another version, the next job loads that one; the
previous stays cached too (`MODEL_CACHE_VERSIONS`), so a rollback or a re-run with an older version does not
reload it.
"""

import logging
import threading
from collections import OrderedDict

from django.conf import settings

from ml.manifest import BundleError
from webapp.modelops.bundles import ModelUnavailable, bundle_fetch_verified
from webapp.modelops.models import ModelVersion
from workers.health import note_warm

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: OrderedDict[int, object] = OrderedDict()

__all__ = ["ModelUnavailable", "get_predictor", "loaded_versions"]


def get_predictor(version: ModelVersion):
    """The warmed-up predictor for `version`, loading it on first use."""
    with _lock:
        predictor = _loaded.get(version.pk)
        if predictor is not None:
            _loaded.move_to_end(version.pk)
            return predictor
        bundle_dir = bundle_fetch_verified(version)
        from ml.predict import Predictor  # TensorFlow is imported here, in the child process

        try:
            predictor = Predictor.from_bundle(bundle_dir, threads=settings.INFERENCE_THREADS)
        except BundleError as exc:
            raise ModelUnavailable(f"model bundle {version.name} refused: {exc}") from exc
        predictor.warm_up()
        _loaded[version.pk] = predictor
        while len(_loaded) > settings.MODEL_CACHE_VERSIONS:
            _loaded.popitem(last=False)
        note_warm(version.name, predictor.engine_name)
        logger.info(
            "loaded model %s (%s) on %s",
            version.name,
            version.architecture,
            predictor.engine_name,
        )
        return predictor


def loaded_versions() -> list[int]:
    return list(_loaded)
