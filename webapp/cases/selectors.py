"""Reads for cases and lesions. Every query that returns patient data goes through
`case_visible_to` or `lesion_visible_to`."""

from django.db.models import Case as Conditional
from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, When
from django.http import Http404

from webapp.accounts.models import Role, User
from webapp.cases.models import Case, CaseStatus, Lesion, Review


def _of_visible_patients(queryset: QuerySet, user: User, patient: str) -> QuerySet:
    """Rows whose patient (the lookup path ``patient``) the user may see: patients their own,
    clinicians their assigned patients', admins all; inactive and anonymous users none."""
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_admin_role:
        return queryset
    if user.role == Role.CLINICIAN:
        return queryset.filter(**{f"{patient}__clinician_assignments__clinician": user})
    return queryset.filter(**{patient: user})


def case_visible_to(user: User) -> QuerySet[Case]:
    base = Case.objects.select_related(
        "lesion__patient", "uploaded_by", "prediction__model_version", "prediction__heatmap"
    )
    return _of_visible_patients(base, user, "lesion__patient")


def lesion_visible_to(user: User) -> QuerySet[Lesion]:
    base = Lesion.objects.select_related("patient").annotate(
        visit_count=Count("cases"), last_visit_at=Max("cases__created_at")
    )
    return _of_visible_patients(base, user, "patient").order_by("-last_visit_at", "-pk")


def lesion_get_for_user(*, user: User, public_id) -> Lesion:
    """A lesion with its visits and their results; the same 404 for someone else's as for none."""
    lesion = (
        lesion_visible_to(user)
        .prefetch_related(
            Prefetch("cases", Case.objects.select_related("prediction__model_version"))
        )
        .filter(public_id=public_id)
        .first()
    )
    if lesion is None:
        raise Http404("No such lesion.")
    return lesion


def review_queue(
    user: User,
    *,
    reviewed: bool | None = None,
    refer: bool | None = None,
    top_class: str = "",
    since=None,
    until=None,
    patient: str = "",
    search: list[str] | None = None,
) -> QuerySet[Case]:
    """The cases a clinician reviews: their assigned patients' (all, for admins), unreviewed first,
    then referred first, then newest; each filter narrows it when given, and every search word must
    be found somewhere in the case."""
    cases = case_visible_to(user).annotate(review_count=Count("reviews"))
    if reviewed is not None:
        cases = cases.filter(review_count__gt=0) if reviewed else cases.filter(review_count=0)
    if refer is not None:
        cases = cases.filter(prediction__decision="refer" if refer else "routine")
    if top_class:
        cases = cases.filter(prediction__top_class=top_class)
    if since:
        cases = cases.filter(created_at__date__gte=since)
    if until:
        cases = cases.filter(created_at__date__lte=until)
    if patient:
        cases = cases.filter(lesion__patient__username__icontains=patient)
    for word in search or []:
        cases = cases.filter(_mentions(word))
    return cases.order_by(
        Conditional(When(review_count=0, then=0), default=1),
        Conditional(When(prediction__decision="refer", then=0), default=1),
        "-created_at",
        "-id",
    )


def _mentions(word: str) -> Q:
    # Review notes through a subquery: a join would repeat cases and inflate the review counts.
    noted = Review.objects.filter(case=OuterRef("pk"), notes__icontains=word)
    return (
        Q(lesion__patient__username__icontains=word)
        | Q(lesion__patient__first_name__icontains=word)
        | Q(lesion__patient__last_name__icontains=word)
        | Q(lesion__body_site__icontains=word)
        | Q(lesion__label__icontains=word)
        | Q(original_filename__icontains=word)
        | Q(public_id__icontains=word)
        | Q(Exists(noted))
    )


def review_queue_counts(cases: QuerySet[Case]) -> dict[str, int]:
    """How many cases the (filtered) queue holds, how many wait for a review, how many of those are referred."""
    return cases.aggregate(
        total=Count("pk"),
        unreviewed=Count("pk", filter=Q(review_count=0)),
        unreviewed_referred=Count("pk", filter=Q(review_count=0, prediction__decision="refer")),
    )


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


def may_upload_for(user: User, patient: User) -> bool:
    """Whether ``user`` may upload for ``patient``: one of `patients_selectable_by` (a patient
    uploading for themselves, the usual case, needs no query)."""
    if user.role == Role.PATIENT and patient.pk == user.pk:
        return True
    return patients_selectable_by(user).filter(pk=patient.pk).exists()


def case_reviews(case: Case) -> QuerySet[Review]:
    """A case's reviews, newest first (the newest is its label for retraining)."""
    return case.reviews.select_related("reviewer", "case__prediction").order_by(
        "-created_at", "-id"
    )


def case_group_name(public_id) -> str:
    """The channel-layer group of the sockets watching one case."""
    return f"case-{public_id}"


def iso(value) -> str | None:
    return value.isoformat() if value else None


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
