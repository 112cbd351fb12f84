"""The re-run pages: asked for from a model version's page, read by admins."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.decorators import admin_required
from webapp.errors import ApplicationError
from webapp.modelops.selectors import model_version_get
from webapp.reruns.forms import RerunForm
from webapp.reruns.selectors import rerun_get, rerun_report
from webapp.reruns.services import rerun_create


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
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("modelops:version", name=name)
    return redirect("reruns:rerun", public_id=rerun.public_id)


@admin_required
@require_GET
def rerun_page(request, public_id):
    rerun = rerun_get(public_id=public_id)
    return render(request, "reruns/rerun.html", {"rerun": rerun, "report": rerun_report(rerun)})
