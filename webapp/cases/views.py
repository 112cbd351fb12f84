from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.decorators import admin_required
from webapp.cases.forms import RerunForm, UploadForm
from webapp.cases.imaging import ImageRejected
from webapp.cases.selectors import (
    case_get_for_user,
    case_state,
    case_visible_to,
    patients_selectable_by,
    rerun_get,
    rerun_report,
)
from webapp.cases.services import (
    CasePermissionDenied,
    case_create_from_file,
    case_create_from_url,
    rerun_create,
)
from webapp.cases.url_fetch import UrlRejected
from webapp.modelops.selectors import model_version_get
from webapp.modelops.services.common import ModelOpsError
from webapp.storage import store
from webapp.storage.responses import private_object_response


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        user=request.user,
        patients=patients_selectable_by(request.user),
    )
    if request.method == "POST" and form.is_valid():
        common = {
            "uploaded_by": request.user,
            "patient": form.chosen_patient(),
            "body_site": form.cleaned_data.get("body_site", ""),
        }
        try:
            if form.cleaned_data.get("image"):
                result = case_create_from_file(upload=form.cleaned_data["image"], **common)
            else:
                result = case_create_from_url(url=form.cleaned_data["image_url"], **common)
        except (ImageRejected, UrlRejected, CasePermissionDenied) as exc:
            form.add_error(None, str(exc))
        except store.StorageUnavailable as exc:
            return render(
                request, "cases/upload.html", {"form": form, "error": str(exc)}, status=503
            )
        else:
            return redirect("cases:results", public_id=result.case.public_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/upload.html", {"form": form}, status=status)


@login_required
@require_GET
def results(request, public_id):
    case = case_get_for_user(user=request.user, public_id=public_id)
    return render(request, "cases/results.html", {"case": case, "state": case_state(case)})


@login_required
@require_GET
def state(request, public_id):
    case = case_get_for_user(user=request.user, public_id=public_id)
    response = JsonResponse(case_state(case))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def image(request, public_id):
    """Stream the stored copy to an authorised user; never a public bucket URL."""
    case = case_get_for_user(user=request.user, public_id=public_id)
    return private_object_response(
        case.image_key, what="The photo", content_type=case.image_content_type, max_age=300
    )


@login_required
@require_GET
def history(request):
    cases = case_visible_to(request.user)
    page = Paginator(cases, 25).get_page(request.GET.get("page"))
    return render(request, "cases/history.html", {"page": page})


@admin_required
@require_POST
def rerun_new(request, name):
    """Re-run chosen past cases with a model version (from that version's page)."""
    version = model_version_get(name=name)
    form = RerunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(" ".join(e) for e in form.errors.values()))
        return redirect("modelops:version", name=name)
    try:
        rerun = rerun_create(
            version=version,
            requested_by=request.user,
            case_ids=form.case_id_list(),
            recent=form.cleaned_data.get("recent"),
            reason=form.cleaned_data.get("reason", ""),
        )
    except ModelOpsError as exc:
        messages.error(request, str(exc))
        return redirect("modelops:version", name=name)
    return redirect("cases:rerun", public_id=rerun.public_id)


@admin_required
@require_GET
def rerun_page(request, public_id):
    rerun = rerun_get(public_id=public_id)
    return render(request, "cases/rerun.html", {"rerun": rerun, "report": rerun_report(rerun)})
