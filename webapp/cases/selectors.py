"""Reads for cases. Every query that returns patient data goes through `case_visible_to`."""

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.urls import reverse

from ml.classes import CLASS_NAMES
from webapp.accounts.models import Role, User
from webapp.cases.models import Case, CaseStatus, Rerun, RerunStatus, Review
from webapp.modelops.selectors import model_version_get_active


def case_visible_to(user: User) -> QuerySet[Case]:
    """Patients see their own cases, clinicians their assigned patients', admins all; others none."""
    base = Case.objects.select_related(
        "lesion__patient", "uploaded_by", "prediction__model_version"
    )
    if not user.is_authenticated or not user.is_active:
        return base.none()
    if user.is_admin_role:
        return base
    if user.role == Role.CLINICIAN:
        return base.filter(lesion__patient__clinician_assignments__clinician=user)
    return base.filter(lesion__patient=user)


def case_get_for_user(*, user: User, public_id) -> Case:
    """The same 404 for someone else's case as for one that does not exist."""
    case = case_visible_to(user).filter(public_id=public_id).first()
    if case is None:
        raise Http404("No such case.")
    return case


def patients_selectable_by(user: User) -> QuerySet[User]:
    """Patients a user may upload for."""
    if user.is_admin_role:
        return User.objects.filter(role=Role.PATIENT, is_active=True)
    if user.role == Role.CLINICIAN:
        return User.objects.filter(
            role=Role.PATIENT, is_active=True, clinician_assignments__clinician=user
        )
    return User.objects.filter(pk=user.pk)


def case_group_name(case: Case) -> str:
    return f"case-{case.public_id}"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def case_state(case: Case, *, model_active: bool | None = None) -> dict:
    """The one representation of a case's job state: JSON view, REST API and live push all send this.

    `model_active` lets a list look the active model up once instead of once per queued case.
    """
    prediction = getattr(case, "prediction", None)
    state = {
        "id": str(case.public_id),
        "status": case.status,
        "status_label": CaseStatus(case.status).label,
        "reason": case.status_reason,
        "created_at": _iso(case.created_at),
        "started_at": _iso(case.started_at),
        "finished_at": _iso(case.finished_at),
        "image_url": reverse("cases:image", kwargs={"public_id": case.public_id}),
        "source_url": case.source_url,
        "prediction": None,
        "waiting_for_model": False,
    }
    if prediction is not None:
        ordered = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
        state["prediction"] = {
            "top_class": prediction.top_class,
            "top_class_name": CLASS_NAMES.get(prediction.top_class, prediction.top_class),
            "top_probability": prediction.top_probability,
            "probabilities": [
                {"code": code, "name": CLASS_NAMES.get(code, code), "probability": p}
                for code, p in ordered
            ],
            "model_version": prediction.model_version.name,
            "latency_ms": prediction.latency_ms,
            "created_at": _iso(prediction.created_at),
        }
    elif case.status == CaseStatus.QUEUED:
        if model_active is None:
            model_active = model_version_get_active() is not None
        state["waiting_for_model"] = not model_active
    return state


def confirmed_case_items() -> list[dict]:
    """Every reviewed case with a readable photo, labelled by its newest review, as training items.

    Photos of one lesion share a lesion id, so a split keeps them together."""
    latest = Review.objects.filter(case=OuterRef("pk")).order_by("-created_at", "-id")
    cases = (
        Case.objects.exclude(status=CaseStatus.REJECTED)
        .annotate(confirmed=Subquery(latest.values("diagnosis")[:1]))
        .filter(confirmed__isnull=False)
        .order_by("pk")
    )
    return [
        {
            "source": "case",
            "image_id": f"case-{case.public_id}",
            "lesion_id": f"lesion-{case.lesion_id}",
            "dx": case.confirmed,
            "path": case.image_key,
            "sha256": case.sha256,
        }
        for case in cases
    ]


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
        "created_at": _iso(rerun.created_at),
        "counts": {
            status: sum(r["status"] == status for r in rows) for status in RerunStatus.values
        },
        "finished": all(r["status"] != RerunStatus.QUEUED for r in rows),
        "agreement": (sum(r["agrees"] for r in done) / len(done)) if done else None,
        "rows": rows,
    }
