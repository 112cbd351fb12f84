from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ml.classes import CLASS_NAMES, CLASSES
from webapp.errors import ApplicationError
from webapp.guidance.forms import GuidanceForm, GuidanceReviewForm
from webapp.guidance.selectors import (
    guidance_current_all,
    guidance_drafts,
    guidance_get,
    guidance_history,
)
from webapp.guidance.services import guidance_propose, guidance_review


def _may_edit(user) -> bool:
    return user.is_clinician or user.is_admin_role


@login_required
@require_GET
def table(request):
    current = guidance_current_all()
    rows = [{"dx": dx, "name": CLASS_NAMES[dx], "current": current.get(dx)} for dx in CLASSES]
    drafts = guidance_drafts() if _may_edit(request.user) else []
    return render(request, "guidance/table.html", {"rows": rows, "drafts": drafts})


@login_required
def diagnosis(request, dx):
    if dx not in CLASSES:
        raise Http404("No such diagnosis.")
    history = list(guidance_history(dx))
    current = next((v for v in history if v.status == "approved"), None)
    form = None
    if _may_edit(request.user):
        initial = {f: getattr(current, f) for f in GuidanceForm.Meta.fields} if current else None
        form = GuidanceForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                draft = guidance_propose(author=request.user, dx=dx, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"Version {draft.version} waits for a second clinician's approval."
                )
                return redirect("guidance:diagnosis", dx=dx)
    elif request.method == "POST":
        raise PermissionDenied("Only clinicians and administrators propose guidance.")
    context = {"dx": dx, "name": CLASS_NAMES[dx], "current": current, "history": history}
    return render(request, "guidance/diagnosis.html", {**context, "form": form})


@login_required
@require_POST
def review(request, pk):
    version = guidance_get(pk=pk)
    form = GuidanceReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
    else:
        try:
            guidance_review(reviewer=request.user, version=version, **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{version.dx} version {version.version} reviewed.")
    return redirect("guidance:diagnosis", dx=version.dx)
