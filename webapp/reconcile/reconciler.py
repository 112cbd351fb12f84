"""The reconciler: jobs the broker lost are sent again, and rows and stored objects are compared.

`reconcile_jobs` is what Celery beat runs every REAPER_INTERVAL_SECONDS (`cases.reconcile`) and what
`manage.py reconcile` runs by hand: it sends again the jobs of cases, heat maps, re-run answers and model
imports that wait with no message in the broker (training runs have the reaper). `check_objects` (the command's `--check-objects`; it lists the bucket, so it is not run every minute)
reports rows whose objects are gone and objects that no row points at.
"""

from __future__ import annotations

from webapp.cases.heatmaps import heatmaps_requeue_stuck
from webapp.cases.models import Case, HeatMap, HeatMapStatus, Prediction
from webapp.cases.services.jobs import cases_requeue_stuck
from webapp.config.broker import waiting_first_arguments
from webapp.config.celery import CLASSIFY_TASK, EXPLAIN_TASK, IMPORT_TASK, RERUN_TASK
from webapp.modelops.services.imports import imports_requeue_stuck
from webapp.reruns.services import reruns_requeue_stuck
from webapp.storage import store

CASE_PREFIXES = ("cases/images/", "cases/results/")


def reconcile_jobs() -> dict[str, int]:
    return {
        **cases_requeue_stuck(in_broker=waiting_first_arguments(CLASSIFY_TASK)),
        "heatmaps": heatmaps_requeue_stuck(in_broker=waiting_first_arguments(EXPLAIN_TASK)),
        "reruns": reruns_requeue_stuck(in_broker=waiting_first_arguments(RERUN_TASK)),
        "imports": imports_requeue_stuck(in_broker=waiting_first_arguments(IMPORT_TASK)),
    }


def check_objects() -> dict[str, list[str]]:
    """What does not match between the database and the bucket, by kind (case ids or keys)."""
    stored = {
        key for prefix in CASE_PREFIXES for key, _ in store.list_prefix(prefix, what="case objects")
    }
    photos = dict(Case.objects.values_list("image_key", "public_id"))
    results = dict(Prediction.objects.values_list("result_key", "case__public_id"))
    heatmaps = dict(
        HeatMap.objects.filter(status=HeatMapStatus.DONE).values_list(
            "image_key", "prediction__case__public_id"
        )
    )
    cases = {str(public_id) for public_id in photos.values()}
    known = set(photos) | set(results) | set(heatmaps)
    return {
        "cases_missing_photo": sorted(str(c) for k, c in photos.items() if k not in stored),
        "predictions_missing_result": sorted(str(c) for k, c in results.items() if k not in stored),
        "heatmaps_missing_image": sorted(str(c) for k, c in heatmaps.items() if k not in stored),
        # Objects of no case: a photo whose row was never committed, or the results of a case
        # deleted while its object deletion failed.
        "objects_of_no_case": sorted(
            key
            for key in stored - known
            if not (key.startswith("cases/results/") and key.split("/")[2] in cases)
        ),
    }
