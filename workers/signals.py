import logging

from celery.signals import worker_process_init

logger = logging.getLogger(__name__)


@worker_process_init.connect
def warm_up_active_model(**kwargs):
    """Load and warm up the active model in each child before it takes a job (first job is not slow)."""
    from django.db import connections

    from webapp.modelops.selectors import model_version_get_active
    from workers.model_cache import ModelUnavailable, get_predictor

    # A connection inherited across fork must not be shared with the parent.
    for conn in connections.all(initialized_only=True):
        conn.close()
    try:
        version = model_version_get_active()
        if version is not None:
            get_predictor(version)
    except ModelUnavailable as exc:
        logger.error("active model refused at start-up: %s", exc)
    except Exception:
        logger.exception("model warm-up failed; it will be retried on the first job")
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close()
