"""Model pages: the model card for everyone signed in; training, judging, promotion for admins."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.decorators import admin_required
from webapp.errors import ApplicationError
from webapp.modelops.cards import model_card
from webapp.modelops.forms import DatasetForm, ModelImportForm, ReasonForm, TrainingRunForm
from webapp.modelops.judging import comparison, evaluation_set_current, external_set_current
from webapp.modelops.selectors import (
    datasets_list,
    model_events_list,
    model_import_get,
    model_imports_list,
    model_version_get,
    model_version_get_active,
    model_versions_list,
    training_run_get,
    training_run_state,
    training_runs_list,
)
from webapp.modelops.services.datasets import dataset_register
from webapp.modelops.services.imports import model_import_create
from webapp.modelops.services.registry import (
    model_version_promote,
    model_version_request_evaluation,
    model_version_rollback,
)
from webapp.modelops.services.runs import (
    training_run_cancel,
    training_run_create,
    training_run_repeat,
)
from webapp.storage import store
from webapp.storage.responses import private_object_response

# Files an admin may download, by their name in a run's or an evaluation's artefacts.
CONTENT_TYPES = {".png": "image/png", ".txt": "text/plain; charset=utf-8", ".md": "text/markdown"}


@login_required
@require_GET
def card(request):
    """The active model's card, in plain language, for everyone signed in."""
    version = model_version_get_active()
    return render(request, "modelops/card.html", {"card": model_card(version) if version else None})


@admin_required
@require_GET
def dashboard(request):
    return render(
        request,
        "modelops/dashboard.html",
        {
            "runs": training_runs_list()[:20],
            "versions": model_versions_list()[:30],
            "datasets": datasets_list(),
            "events": model_events_list()[:10],
            "imports": model_imports_list()[:10],
            "active": model_version_get_active(),
            "evaluation_set": evaluation_set_current(),
            "external_set": external_set_current(),
            "rollback_form": ReasonForm(),
        },
    )


@admin_required
@require_http_methods(["GET", "POST"])
def run_new(request):
    form = TrainingRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = training_run_create(
                requested_by=request.user,
                dataset=form.cleaned_data["dataset"],
                preset=form.cleaned_data["preset"],
                options=form.options(),
                include_confirmed_cases=form.cleaned_data["include_confirmed_cases"],
            )
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("modelops:run", public_id=run.public_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "modelops/run_new.html",
        {"form": form, "has_datasets": datasets_list().exists()},
        status=status,
    )


@admin_required
@require_GET
def run_page(request, public_id):
    run = training_run_get(public_id=public_id)
    return render(request, "modelops/run.html", {"run": run, "state": training_run_state(run)})


@admin_required
@require_GET
def run_state(request, public_id):
    response = JsonResponse(training_run_state(training_run_get(public_id=public_id)))
    response["Cache-Control"] = "no-store"
    return response


@admin_required
@require_POST
def run_cancel(request, public_id):
    run = training_run_get(public_id=public_id)
    try:
        training_run_cancel(run=run, requested_by=request.user)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Cancel requested: the run stops at its next batch.")
    return redirect("modelops:run", public_id=public_id)


@admin_required
@require_POST
def run_repeat(request, public_id):
    run = training_run_get(public_id=public_id)
    try:
        repeat = training_run_repeat(run=run, requested_by=request.user)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("modelops:run", public_id=public_id)
    return redirect("modelops:run", public_id=repeat.public_id)


def _stream(key: str, name: str) -> HttpResponse:
    suffix = "." + key.rsplit(".", 1)[-1]
    return private_object_response(
        key,
        what=f"The file {name}",
        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        max_age=60,
    )


@admin_required
@require_GET
def run_artefact(request, public_id, name):
    run = training_run_get(public_id=public_id)
    key = run.artefacts.get(name)
    if key is None:
        raise Http404("No such file for this run.")
    return _stream(key, name)


@admin_required
@require_GET
def version_page(request, name):
    version = model_version_get(name=name)
    return render(
        request,
        "modelops/version.html",
        {
            "version": version,
            "cmp": comparison(version),
            "card": model_card(version),
            "promote_form": ReasonForm(),
        },
    )


@admin_required
@require_GET
def version_artefact(request, name, evaluation_set, file):
    version = model_version_get(name=name)
    evaluation = version.evaluations.filter(evaluation_set__sha256=evaluation_set).first()
    if evaluation is None or file not in evaluation.artefacts:
        raise Http404("No such file for this model.")
    return _stream(evaluation.artefacts[file], file)


@admin_required
@require_POST
def version_promote(request, name):
    version = model_version_get(name=name)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        model_version_promote(
            version=version, actor=request.user, reason=form.cleaned_data.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("modelops:version", name=name)
    messages.success(request, f"{version.name} is now the active model; new uploads use it.")
    return redirect("modelops:dashboard")


@admin_required
@require_POST
def version_evaluate(request, name):
    version = model_version_get(name=name)
    try:
        model_version_request_evaluation(version=version, requested_by=request.user)
    except ApplicationError as exc:  # the job queue is down: nothing was started
        messages.error(request, str(exc))
    else:
        messages.info(request, f"{version.name} will be evaluated by the training worker.")
    return redirect("modelops:version", name=name)


@admin_required
@require_POST
def rollback(request):
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        event = model_version_rollback(
            actor=request.user, reason=form.cleaned_data.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rolled back: {event.version.name} is the active model again.")
    return redirect("modelops:dashboard")


@admin_required
@require_http_methods(["GET", "POST"])
def dataset_new(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset_register(created_by=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Dataset {form.cleaned_data['name']} registered.")
            return redirect("modelops:dashboard")
    status = 400 if request.method == "POST" else 200
    return render(request, "modelops/dataset_new.html", {"form": form}, status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def import_new(request):
    form = ModelImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = model_import_create(
                requested_by=request.user,
                kind=form.cleaned_data["kind"],
                files=form.uploads(),
                architecture=form.cleaned_data["architecture"],
                input_scale=form.cleaned_data["input_scale"],
                name=form.cleaned_data["name"],
            )
        except ApplicationError as exc:
            form.add_error(None, str(exc))
        except store.StorageUnavailable as exc:
            return render(
                request, "modelops/import_new.html", {"form": form, "error": str(exc)}, status=503
            )
        else:
            return redirect("modelops:import", public_id=record.public_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "modelops/import_new.html", {"form": form}, status=status)


@admin_required
@require_GET
def import_page(request, public_id):
    return render(
        request, "modelops/import.html", {"record": model_import_get(public_id=public_id)}
    )
