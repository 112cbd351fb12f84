"""Make a prediction's Grad-CAM heat map (the `cases.explain` task), off the classification path."""

import logging

from django.conf import settings

from ml.heatmaps import GradCamError, overlay_png
from ml.preprocess import ImageDecodeError
from webapp.cases.heatmaps import heatmap_claim, heatmap_fail, heatmap_record
from webapp.storage import store
from workers.model_cache import get_explainer
from workers.outcomes import Outcome

logger = logging.getLogger(__name__)


def explain_heatmap(*, heatmap_id: int) -> str:
    """Make and store the heat map, with the prediction's own model version and for its top class.

    Permanent faults (a model Grad-CAM cannot follow, an unreadable photo, a job that keeps killing its
    worker) fail the heat map with a reason; transient ones (store, database, bundle download) raise,
    and the task retries.
    """
    heatmap = heatmap_claim(heatmap_id=heatmap_id)
    if heatmap is None:
        return Outcome.ALREADY_FINISHED
    if heatmap.attempts > settings.CLASSIFY_MAX_ATTEMPTS:
        heatmap_fail(
            heatmap_id=heatmap_id,
            error=f"Making it stopped its worker {heatmap.attempts - 1} times.",
        )
        return Outcome.FAILED
    prediction = heatmap.prediction
    case, version = prediction.case, prediction.model_version
    try:
        explainer = get_explainer(version)
        photo = store.read(case.image_key, what=f"the photo of case {case.public_id}")
        heat = explainer.explain_bytes(photo, heatmap.target_class)
    except GradCamError as exc:
        heatmap_fail(heatmap_id=heatmap_id, error=f"This model cannot be explained: {exc}")
        return Outcome.FAILED
    except ImageDecodeError as exc:
        heatmap_fail(heatmap_id=heatmap_id, error=f"The stored photo could not be read: {exc}")
        return Outcome.FAILED
    except store.ObjectMissing:
        # The case was deleted meanwhile (its heat map row went with it) or its photo is gone.
        heatmap_fail(heatmap_id=heatmap_id, error="The stored photo is gone.")
        return Outcome.GONE
    key = store.case_heatmap_key(case.public_id, version.name)
    png = overlay_png(heat.grid, case.image_width, case.image_height, heat.region)
    store.put(key, png, what=f"the heat map of case {case.public_id}")
    grid = [[round(float(v), 4) for v in row] for row in heat.grid]
    region = [round(float(v), 4) for v in heat.region]
    if not heatmap_record(
        heatmap_id=heatmap_id, layer=heat.layer, grid=grid, image_key=key, region=region
    ):
        # Deleted while it was being made: leave nothing of the case behind.
        store.delete_quietly(key)
        return Outcome.GONE
    logger.info("heat map of case %s: %s on %s", case.public_id, heatmap.target_class, heat.layer)
    return Outcome.DONE
