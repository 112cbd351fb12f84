import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.models import Role
from webapp.audit.middleware import note_refusal
from webapp.cases.charts import malignant_trend
from webapp.cases.forms import ReviewForm, ReviewQueueFilter, UploadForm
from webapp.cases.selectors import (
    case_get_for_user,
    case_reviews,
    case_visible_to,
    lesion_get_for_user,
    lesion_visible_to,
    patients_selectable_by,
    review_queue,
    review_queue_counts,
)
from webapp.cases.serializers import LesionSerializer, case_state
from webapp.cases.services.deletion import case_delete
from webapp.cases.services.reviews import review_create
from webapp.cases.services.uploads import case_upload
from webapp.errors import ApplicationError
from webapp.intake.quota import quota_message, upload_wait
from webapp.paging import page_of


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        initial={"lesion": request.GET.get("lesion")},
        user=request.user,
        patients=patients_selectable_by(request.user),
        lesions=_lesion_choices(request),
    )
    status = 200
    if request.method == "POST":
        status = 400
        wait = upload_wait(request)
        if wait:
            # The quota is checked before the photo is read: nothing is stored.
            form.add_error(None, quota_message(wait))
            response = render(request, "cases/upload.html", {"form": form}, status=429)
            response["Retry-After"] = str(wait)
            return response
        if form.is_valid():
            try:
                result = case_upload(uploaded_by=request.user, **form.cleaned_data)
            except ApplicationError as exc:
                field = exc.extra.get("field")
                form.add_error(field if field in form.fields else None, str(exc))
                status = exc.status
            else:
                return redirect("cases:results", public_id=result.case.public_id)
    return render(request, "cases/upload.html", {"form": form}, status=status)


def _lesion_choices(request):
    """Patients choose among their own lesions. Clinicians and admins may see thousands, so they
    are offered only the lesion they came from (its page links here with ?lesion=)."""
    visible = lesion_visible_to(request.user)
    if request.user.role == Role.PATIENT:
        return visible
    try:
        chosen = uuid.UUID(request.POST.get("lesion") or request.GET.get("lesion") or "")
    except ValueError:
        return visible.none()
    return visible.filter(public_id=chosen)


@login_required
@require_GET
def queue(request):
    """Clinicians' review queue: their patients' cases, unreviewed and referred first."""
    if not (request.user.is_clinician or request.user.is_admin_role):
        raise PermissionDenied("The review queue is for clinicians.")
    form = ReviewQueueFilter(request.GET)
    if form.is_valid():
        cases, status = review_queue(request.user, **form.filters()), 200
    else:
        # Still the queue's queryset (annotated as the counts need), with nothing in it.
        cases, status = review_queue(request.user).none(), 400
    return render(
        request,
        "cases/queue.html",
        {"form": form, "counts": review_queue_counts(cases), **page_of(request, cases, 25)},
        status=status,
    )


@login_required
@require_GET
def lesions(request):
    return render(
        request, "cases/lesions.html", page_of(request, lesion_visible_to(request.user), 25)
    )


@login_required
@require_GET
def lesion(request, public_id):
    found = lesion_get_for_user(user=request.user, public_id=public_id)
    return render(request, "cases/lesion.html", {"lesion": found, **_timeline(found)})


def _timeline(lesion) -> dict:
    timeline = LesionSerializer(lesion).data
    return {"timeline": timeline, "trend": malignant_trend(timeline["visits"])}


@login_required
@require_GET
def results(request, public_id):
    case = case_get_for_user(user=request.user, public_id=public_id)
    may_review = request.user.is_clinician or request.user.is_admin_role
    return render(
        request,
        "cases/results.html",
        {
            "case": case,
            "state": case_state(case),
            "reviews": list(case_reviews(case)),
            "review_form": ReviewForm() if may_review else None,
            "may_delete": request.user.pk == case.lesion.patient_id or request.user.is_admin_role,
            "current_case": str(case.public_id),
            **_timeline(lesion_get_for_user(user=request.user, public_id=case.lesion.public_id)),
        },
    )


@login_required
@require_POST
def delete(request, public_id):
    """The patient deletes a photo and its results; the page asks them to confirm first."""
    case = case_get_for_user(user=request.user, public_id=public_id)
    if request.POST.get("confirm") != "yes":
        messages.error(
            request, "Tick the box to confirm that the photo and its results are deleted."
        )
        return redirect("cases:results", public_id=case.public_id)
    try:
        case_delete(case=case, by=request.user)
    except ApplicationError as exc:
        note_refusal(request, exc.status)
        messages.error(request, str(exc))
        return redirect("cases:results", public_id=case.public_id)
    messages.success(request, "The photo and its results were deleted.")
    return redirect("cases:history")


@login_required
@require_POST
def review(request, public_id):
    """A clinician confirms or corrects the diagnosis; the review is added, never replaces one."""
    case = case_get_for_user(user=request.user, public_id=public_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(" ".join(e) for e in form.errors.values()))
    else:
        try:
            review_create(case=case, reviewer=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            note_refusal(request, exc.status)
            messages.error(request, str(exc))
        else:
            messages.success(request, "Your review was recorded.")
    return redirect("cases:results", public_id=case.public_id)


@login_required
@require_GET
def state(request, public_id):
    case = case_get_for_user(user=request.user, public_id=public_id)
    response = JsonResponse(case_state(case))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def history(request):
    return render(
        request, "cases/history.html", page_of(request, case_visible_to(request.user), 25)
    )
