"""Per-process cache of loaded models, keyed by model version.

Each worker child loads a bundle once (lazily, after fork), warms it up before it answers anything, and
keeps it for every following job. When an admin promotes another version, a watcher thread in each child
(`keep_active_warm`) loads it within `MODEL_WATCH_SECONDS`, before a job needs it, so the first upload after a
promotion does not wait for the bundle and the worker's health check is green again without traffic; a job
that comes sooner loads it itself. The previous version stays cached too (`MODEL_CACHE_VERSIONS`), so a
rollback or a re-run with an older version does not reload it. Heat-map workers keep the Keras model of each
version (an `Explainer`) the same way.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connections

from ml.bundle import BundleError
from webapp.modelops.bundles import ModelUnavailable, bundle_fetch_verified
from webapp.modelops.models import ModelVersion
from webapp.modelops.selectors import model_version_get_active
from workers.health import note_warm

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, int], object] = OrderedDict()

__all__ = ["ModelUnavailable", "get_explainer", "get_predictor", "keep_active_warm"]


def _cached(kind: str, version: ModelVersion, load: Callable[[Path, ModelVersion], object]):
    with _lock:
        key = (kind, version.pk)
        loaded = _loaded.get(key)
        if loaded is not None:
            _loaded.move_to_end(key)
            return loaded
        bundle_dir = bundle_fetch_verified(version)
        try:
            loaded = load(bundle_dir, version)
        except BundleError as exc:
            raise ModelUnavailable(f"model bundle {version.name} refused: {exc}") from exc
        _loaded[key] = loaded
        while len(_loaded) > settings.MODEL_CACHE_VERSIONS:
            _loaded.popitem(last=False)
        logger.info("loaded model %s (%s) as %s", version.name, version.architecture, kind)
        return loaded


def _load_predictor(bundle_dir: Path, version: ModelVersion):
    from ml.predict import Predictor  # TensorFlow is imported here, in the child process

    predictor = Predictor.from_bundle(bundle_dir, threads=settings.INFERENCE_THREADS)
    predictor.warm_up()
    note_warm(version.name, predictor.engine_name)
    return predictor


def _load_explainer(bundle_dir: Path, version: ModelVersion):
    from ml.gradcam import Explainer  # Keras and TensorFlow, in the child process

    return Explainer.from_bundle(bundle_dir)


def get_predictor(version: ModelVersion):
    """The warmed-up predictor for `version`, loading it on first use."""
    return _cached("predictor", version, _load_predictor)


def get_explainer(version: ModelVersion):
    """The heat-map explainer of `version`; raises `ml.gradcam.GradCamError` for a model whose
    structure Grad-CAM cannot follow."""
    return _cached("explainer", version, _load_explainer)


def keep_active_warm(load: Callable[[ModelVersion], object], every: float) -> threading.Thread:
    """In a worker child: a daemon thread that asks every ``every`` seconds which version is
    active and ``load``s it (a cache hit once it is loaded). A version that fails to load is
    reported once and left to the jobs, which load it themselves (and say why when they cannot):
    trying again every few seconds would fetch and build it again each time."""
    thread = threading.Thread(
        target=_watch, args=(load, every), name="active-model-watcher", daemon=True
    )
    thread.start()
    return thread


def _watch(load: Callable[[ModelVersion], object], every: float) -> None:
    failed: set[int] = set()
    while True:
        time.sleep(every)
        version = None
        try:
            version = model_version_get_active()
            if version is not None and version.pk not in failed:
                load(version)
        except Exception as exc:
            logger.error("could not load the active model ahead of its jobs: %s", exc)
            if version is not None:
                failed.add(version.pk)
        finally:
            # This thread's own connection: not held open between looks.
            connections.close_all()
