"""Reads of re-runs: one re-run, and its report beside each case's own answer."""

from django.http import Http404

from webapp.cases.selectors import iso
from webapp.reruns.models import Rerun, RerunStatus


def rerun_get(*, public_id) -> Rerun:
    rerun = (
        Rerun.objects.select_related("model_version", "requested_by")
        .filter(public_id=public_id)
        .first()
    )
    if rerun is None:
        raise Http404("No such re-run.")
    return rerun


def rerun_report(rerun: Rerun) -> dict:
    """Each case's own answer beside the re-run's, and how often they agree."""
    rows = []
    for result in rerun.results.select_related("case__prediction__model_version"):
        prediction = getattr(result.case, "prediction", None)
        rows.append(
            {
                "case": str(result.case.public_id),
                "status": result.status,
                "error": result.error,
                "original": prediction.top_class if prediction else None,
                "original_version": prediction.model_version.name if prediction else None,
                "rerun": result.top_class or None,
                "rerun_probability": result.top_probability,
                "agrees": bool(
                    prediction and result.top_class and prediction.top_class == result.top_class
                ),
            }
        )
    done = [r for r in rows if r["status"] == RerunStatus.DONE and r["original"]]
    return {
        "id": str(rerun.public_id),
        "model_version": rerun.model_version.name,
        "requested_by": rerun.requested_by.username,
        "reason": rerun.reason,
        "created_at": iso(rerun.created_at),
        "counts": {
            status: sum(r["status"] == status for r in rows) for status in RerunStatus.values
        },
        "finished": all(r["status"] != RerunStatus.QUEUED for r in rows),
        "agreement": (sum(r["agrees"] for r in done) / len(done)) if done else None,
        "rows": rows,
    }
