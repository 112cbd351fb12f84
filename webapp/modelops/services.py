"""Writes for models, datasets and training runs: registry, promotion, rollback and the run's life.

Every entry point (admin pages, REST API, management commands, the training worker) calls these; an
expected failure is a `ModelOpsError` whose message says what to do, and whose `status` the views answer.
"""

from __future__ import annotations

import logging
import re
import tempfile
from datetime import timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ml.classes import CLASSES
from ml.datasets import DatasetError
from ml.manifest import BundleError, pack_bundle, read_manifest
from ml.preprocess import INPUT_SCALINGS
from ml.training_config import ConfigError, TrainConfig, preset_options
from webapp.accounts.models import User
from webapp.config.celery import EVALUATE_TASK, IMPORT_TASK, TRAIN_TASK, app
from webapp.modelops.datasources import check_location
from webapp.modelops.models import (
    RUN_IN_PROGRESS,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    Dataset,
    ImportKind,
    ImportStatus,
    ModelEvaluation,
    ModelEvent,
    ModelEventAction,
    ModelImport,
    ModelStatus,
    ModelVersion,
    RunStatus,
    TrainingRun,
)
from webapp.modelops.selectors import (
    model_version_get_active,
    promotion_gate,
    training_run_group_name,
    training_run_state,
)
from webapp.modelops.signals import model_version_activated
from webapp.storage import store

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
# Options a run request may set besides the preset; paths and the split are the portal's to decide.
REQUESTABLE_OPTIONS = frozenset(
    {
        "architecture",
        "image_size",
        "epochs",
        "head_epochs",
        "fine_tune_epochs",
        "learning_rate",
        "fine_tune_learning_rate",
        "fine_tune_layers",
        "batch_size",
        "class_weighting",
        "schedule",
        "max_minutes",
        "label_smoothing",
        "weight_decay",
        "colour_jitter",
        "seed",
        "limit_per_class",
        "find_lr",
    }
)


class ModelOpsError(Exception):
    """An expected refusal; the message is for the person who asked."""

    status = 400


class NotAllowed(ModelOpsError):
    status = 403


class PromotionRefused(ModelOpsError):
    status = 409

    def __init__(self, message: str, gate: dict) -> None:
        super().__init__(message)
        self.gate = gate


class InvalidRunState(ModelOpsError):
    status = 409


def require_admin(user: User | None) -> None:
    """Only administrators retrain, promote and roll back; tasks check again with the stored user."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_admin_role:
        raise NotAllowed("Only administrators may train, import, promote or roll back models.")


# --- the registry -------------------------------------------------------------------------------------


def model_version_register(
    *,
    bundle_dir: Path,
    name: str | None = None,
    created_by: User | None = None,
    parent: ModelVersion | None = None,
    training_run: TrainingRun | None = None,
    snapshot=None,
    evaluations: list[dict] | None = None,
) -> ModelVersion:
    """Verify a bundle directory, upload it as a zip under a new key and record it as a candidate.

    ``evaluations`` (``{"evaluation_set", "metrics", "artefacts", "seen_in_training"}``) are recorded in
    the same transaction, so a candidate is never registered without the numbers it was judged on.
    """
    manifest = read_manifest(bundle_dir)  # raises BundleError on any hash mismatch
    if manifest["class_names"] != list(CLASSES):
        raise BundleError(
            f"The bundle's classes are {', '.join(manifest['class_names'])}; SkinSight serves "
            f"{', '.join(CLASSES)} in that order."
        )
    if name is None:
        name = f"{manifest['architecture']}-{timezone.now():%Y%m%d-%H%M%S}"
    if not NAME_PATTERN.match(name):
        raise BundleError(
            f"Model name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (max 120)."
        )
    if ModelVersion.objects.filter(name=name).exists():
        raise BundleError(f"A model named {name!r} already exists; versions are never overwritten.")
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "bundle.zip"
        digest = pack_bundle(bundle_dir, zip_path)
        stored_key = store.model_bundle_key(name, digest)
        what = f"model bundle {name}"
        # The key holds the zip's sha256, so an object already there (left by a registration that
        # failed after its upload) has these very bytes; workers check the hash again on every fetch.
        uploaded = not store.exists(stored_key, what=what)
        if uploaded:
            store.put_file_new(stored_key, zip_path, what=what)
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                name=name,
                architecture=manifest["architecture"],
                bundle_key=stored_key,
                sha256=digest,
                manifest=manifest,
                metrics=manifest.get("metrics") or {},
                parent=parent,
                created_by=created_by,
                training_run=training_run,
                snapshot=snapshot,
            )
            for evaluation in evaluations or []:
                ModelEvaluation.objects.create(model_version=version, **evaluation)
    except Exception:
        if uploaded:
            store.delete_quietly(stored_key)
        raise
    return version


def model_evaluation_record(
    *, version: ModelVersion, evaluation_set, metrics: dict, artefacts: dict, seen_in_training
) -> ModelEvaluation:
    evaluation, _ = ModelEvaluation.objects.get_or_create(
        model_version=version,
        evaluation_set=evaluation_set,
        defaults={
            "metrics": metrics,
            "artefacts": artefacts,
            "seen_in_training": seen_in_training,
        },
    )
    return evaluation


@transaction.atomic
def _make_active(
    *, version: ModelVersion, action: str, actor: User | None, reason: str, gate: dict
) -> ModelEvent:
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(status=ModelStatus.ACTIVE)
        .exclude(pk=version.pk)
        .first()
    )
    if previous is not None:
        previous.status = ModelStatus.RETIRED
        previous.save(update_fields=["status"])
    version.status = ModelStatus.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])
    event = ModelEvent.objects.create(
        action=action, version=version, previous=previous, actor=actor, reason=reason, gate=gate
    )
    # Workers read the active version per job, so the next job is served (after warm-up) by this one;
    # the cases app hands out the uploads that waited while no model was active.
    transaction.on_commit(
        lambda: model_version_activated.send(sender=ModelVersion, version=version)
    )
    return event


def model_version_activate(*, version: ModelVersion, reason: str) -> ModelEvent:
    """Activation by an operator with shell access (``import_model --activate``); recorded as such."""
    return _make_active(
        version=version,
        action=ModelEventAction.ACTIVATE,
        actor=None,
        reason=reason,
        gate=promotion_gate(version),
    )


def model_version_promote(*, version: ModelVersion, actor: User, reason: str = "") -> ModelEvent:
    """Make a candidate the model that answers patients, if the judge allows or a reason is given."""
    require_admin(actor)
    reason = reason.strip()
    gate = promotion_gate(version)
    if model_version_get_active() == version:
        raise PromotionRefused(f"{version.name} is already the active model.", gate)
    if not gate["passed"]:
        if not reason:
            raise PromotionRefused(
                "Promotion refused: "
                + " ".join(gate["reasons"])
                + " Write a reason to promote anyway.",
                gate,
            )
        gate = {**gate, "overridden": True}
    return _make_active(
        version=version, action=ModelEventAction.PROMOTE, actor=actor, reason=reason, gate=gate
    )


def model_version_rollback(*, actor: User, reason: str) -> ModelEvent:
    """Give the answering role back to the model that held it before the current one."""
    require_admin(actor)
    reason = reason.strip()
    if not reason:
        raise ModelOpsError("Say why you roll back: the reason is kept with the record.")
    active = model_version_get_active()
    if active is None:
        raise ModelOpsError("No model is active, so there is nothing to roll back.")
    last = (
        ModelEvent.objects.filter(version=active, previous__isnull=False)
        .select_related("previous")
        .first()
    )
    if last is None:
        raise ModelOpsError(
            f"{active.name} did not replace another model; there is nothing to go back to."
        )
    return _make_active(
        version=last.previous,
        action=ModelEventAction.ROLLBACK,
        actor=actor,
        reason=reason,
        gate={"from": active.name, "to": last.previous.name},
    )


def model_version_request_evaluation(*, version: ModelVersion, requested_by: User) -> None:
    """Have the training worker evaluate ``version`` on the frozen set (an imported model, say)."""
    require_admin(requested_by)
    transaction.on_commit(lambda: app.send_task(EVALUATE_TASK, args=[version.pk], queue="training"))


# --- imports from the admin page ---------------------------------------------------------------------

# Per kind: role of each file → (name it is stored under, suffixes it may have).
IMPORT_FILES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    ImportKind.BUNDLE: {"bundle": ("bundle.zip", (".zip",))},
    ImportKind.MODEL_FILE: {"model": ("model", (".keras", ".h5"))},
    ImportKind.JSON_WEIGHTS: {
        "json": ("model.json", (".json",)),
        "weights": ("weights.h5", (".h5",)),
    },
}


def model_import_create(
    *,
    requested_by: User,
    kind: str,
    files: dict,
    architecture: str,
    input_scale: str = "0-255",
    name: str = "",
) -> ModelImport:
    """Store uploaded model files and queue their check and conversion on the training worker."""
    require_admin(requested_by)
    if kind not in IMPORT_FILES:
        raise ModelOpsError(f"Unknown import kind {kind!r}.")
    if input_scale not in INPUT_SCALINGS:
        raise ModelOpsError(
            f"Unknown input scale {input_scale!r}; choose one of {', '.join(INPUT_SCALINGS)}."
        )
    if not NAME_PATTERN.match(architecture or ""):
        raise ModelOpsError("Name the architecture with letters, digits, '.', '_' or '-'.")
    if name and not NAME_PATTERN.match(name):
        raise ModelOpsError(
            f"Model name {name!r} is not allowed: use letters, digits, '.', '_' or '-'."
        )
    if name and ModelVersion.objects.filter(name=name).exists():
        raise ModelOpsError(
            f"A model named {name!r} already exists; versions are never overwritten."
        )
    expected = IMPORT_FILES[kind]
    missing = [role for role in expected if not files.get(role)]
    if missing:
        raise ModelOpsError(f"Missing file(s) for this kind of import: {', '.join(missing)}.")
    record = ModelImport(
        requested_by=requested_by,
        kind=kind,
        architecture=architecture,
        input_scale=input_scale,
        name=name,
    )
    uploads = {}
    try:
        for role, (stored_as, suffixes) in expected.items():
            upload = files[role]
            suffix = Path(upload.name or "").suffix.lower()
            if suffix not in suffixes:
                raise ModelOpsError(
                    f"The {role} file must end in {' or '.join(suffixes)}, not {upload.name!r}."
                )
            if not upload.size:
                raise ModelOpsError(f"The {role} file {upload.name!r} is empty.")
            if upload.size > settings.MODEL_IMPORT_MAX_BYTES:
                raise ModelOpsError(
                    f"The {role} file is {upload.size // 2**20} MB; the limit is "
                    f"{settings.MODEL_IMPORT_MAX_BYTES // 2**20} MB."
                )
            filename = stored_as if stored_as.endswith(suffix) else f"{stored_as}{suffix}"
            key = store.model_import_key(record.public_id, filename)
            uploads[role] = store.put_new(key, upload, what=f"the uploaded {role} file")
        record.uploads = uploads
        with transaction.atomic():
            record.save()
            transaction.on_commit(
                lambda: app.send_task(IMPORT_TASK, args=[record.pk], queue="training")
            )
    except BaseException:
        for key in uploads.values():
            store.delete_quietly(key)
        raise
    return record


def model_import_claim(*, import_id: int) -> ModelImport | None:
    claimed = ModelImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING
    )
    if not claimed:
        return None
    return ModelImport.objects.select_related("requested_by").get(pk=import_id)


def model_import_finish(
    *, import_id: int, status: str, reason: str, version: ModelVersion | None = None
) -> None:
    ModelImport.objects.filter(pk=import_id, status=ImportStatus.RUNNING).update(
        status=status, status_reason=reason, model_version=version, finished_at=timezone.now()
    )


# --- datasets -----------------------------------------------------------------------------------------


def dataset_register(
    *,
    name: str,
    location_kind: str,
    location: str,
    description: str = "",
    created_by: User | None,
) -> Dataset:
    if created_by is not None:
        require_admin(created_by)
    if Dataset.objects.filter(name=name).exists():
        raise ModelOpsError(f"A dataset named {name!r} is already registered.")
    try:
        location = check_location(location_kind=location_kind, location=location)
    except DatasetError as exc:
        raise ModelOpsError(str(exc)) from exc
    return Dataset.objects.create(
        name=name,
        location_kind=location_kind,
        location=location,
        description=description,
        created_by=created_by,
    )


# --- training runs: requests from people --------------------------------------------------------------


def training_options(*, preset: str, options: dict) -> dict:
    """The preset's options overridden by explicit ones, checked as a training run will use them."""
    unknown = sorted(set(options) - REQUESTABLE_OPTIONS)
    if unknown:
        raise ModelOpsError(f"Unknown training option(s): {', '.join(unknown)}.")
    architecture = options.get("architecture") or "mobilenet_v2"
    explicit = {k: v for k, v in options.items() if v is not None}
    try:
        merged = {**(preset_options(preset, architecture) if preset else {}), **explicit}
        merged["architecture"] = architecture
        TrainConfig.from_options(merged, data_dir="-", out_dir="-").validate()
    except ConfigError as exc:
        raise ModelOpsError(f"Training options refused: {exc}.") from exc
    return merged


def _enqueue_training(run_id: int) -> None:
    # By id only: the worker re-reads the row (and who asked) before it trains anything.
    app.send_task(TRAIN_TASK, args=[run_id], queue="training")


def training_run_create(
    *,
    requested_by: User,
    dataset: Dataset,
    preset: str = "",
    options: dict | None = None,
    include_confirmed_cases: bool = False,
) -> TrainingRun:
    """Queue a run; two requests are two runs, each with its own row, bundle name and output."""
    require_admin(requested_by)
    merged = training_options(preset=preset, options=options or {})
    with transaction.atomic():
        run = TrainingRun.objects.create(
            requested_by=requested_by,
            dataset=dataset,
            preset=preset,
            options=merged,
            include_confirmed_cases=include_confirmed_cases,
        )
        transaction.on_commit(lambda: _enqueue_training(run.pk))
    return run


def training_run_repeat(*, run: TrainingRun, requested_by: User) -> TrainingRun:
    """The same options on the same frozen data, as a new run."""
    require_admin(requested_by)
    if run.snapshot_id is None:
        raise InvalidRunState("This run never froze its data, so it cannot be repeated exactly.")
    with transaction.atomic():
        repeat = TrainingRun.objects.create(
            requested_by=requested_by,
            dataset=run.dataset,
            preset=run.preset,
            options=run.options,
            include_confirmed_cases=run.include_confirmed_cases,
            repeat_of=run,
            snapshot=run.snapshot,
        )
        transaction.on_commit(lambda: _enqueue_training(repeat.pk))
    return repeat


def training_run_cancel(*, run: TrainingRun, requested_by: User) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next batch and says so."""
    require_admin(requested_by)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status in RUN_TERMINAL:
            raise InvalidRunState(f"The run has already {run.get_status_display().lower()}.")
        run.cancel_requested_at = timezone.now()
        run.cancel_requested_by = requested_by
        fields = ["cancel_requested_at", "cancel_requested_by"]
        if run.status == RunStatus.QUEUED:
            _move(
                run, RunStatus.CANCELLED, f"Cancelled by {requested_by.username} before it started."
            )
            fields += ["status", "status_reason", "finished_at"]
        run.save(update_fields=fields)
        transaction.on_commit(lambda: training_run_publish(run_id=run.pk))
    return run


# --- training runs: the worker's side -----------------------------------------------------------------


def _move(run: TrainingRun, status: str, reason: str = "") -> None:
    if status not in RUN_TRANSITIONS[run.status]:
        raise InvalidRunState(f"Run {run.pk} cannot go from {run.status} to {status}.")
    run.status = status
    if reason:
        run.status_reason = reason
    if status in RUN_TERMINAL:
        run.finished_at = timezone.now()


def training_run_claim(*, run_id: int, worker: str) -> TrainingRun | None:
    """Claim a queued run for this worker (queued → preparing), once. None: not ours to run."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.PREPARING, worker=worker, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    training_run_publish(run_id=run_id)
    return (
        TrainingRun.objects.select_related("requested_by", "dataset", "snapshot")
        .filter(pk=run_id)
        .first()
    )


def training_run_advance(*, run_id: int, status: str, **fields) -> None:
    """Move a running run to its next stage, recording ``fields`` (device, snapshot, …)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        _move(run, status)
        for name, value in fields.items():
            setattr(run, name, value)
        run.save(update_fields=["status", "finished_at", *fields])
    training_run_publish(run_id=run_id)


def training_run_record(*, run_id: int, **fields) -> None:
    """Record facts about a running run (its device, say) without changing its stage."""
    TrainingRun.objects.filter(pk=run_id).update(**fields)
    training_run_publish(run_id=run_id)


def training_run_heartbeat(*, run_id: int) -> bool:
    """Record that the run is alive; True when someone asked it to stop."""
    TrainingRun.objects.filter(pk=run_id, status__in=RUN_IN_PROGRESS).update(
        heartbeat_at=timezone.now()
    )
    return TrainingRun.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()


def training_run_progress(*, run_id: int, progress: dict) -> None:
    TrainingRun.objects.filter(pk=run_id, status__in=RUN_IN_PROGRESS).update(
        progress=progress, heartbeat_at=timezone.now()
    )
    training_run_publish(run_id=run_id)


def training_run_add_artefacts(*, run_id: int, artefacts: dict) -> None:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        run.artefacts = {**run.artefacts, **artefacts}
        run.save(update_fields=["artefacts"])


def training_run_finish(
    *, run_id: int, status: str, reason: str = "", problems: list | None = None
) -> bool:
    """End a run that is not finished yet (succeeded, failed or cancelled). False if it already was."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in RUN_TERMINAL:
            return False
        _move(run, status, reason)
        fields = ["status", "status_reason", "finished_at"]
        if problems is not None:
            run.problems = problems
            fields.append("problems")
        run.save(update_fields=fields)
        transaction.on_commit(lambda: training_run_publish(run_id=run_id))
    if status == RunStatus.FAILED:
        logger.warning("training run %s failed: %s", run_id, reason)
    return True


def training_run_clean_up(*, run: TrainingRun) -> None:
    """Remove what a run that did not succeed may have left in the bucket without registering it."""
    if getattr(run, "model_version", None) is not None:
        return
    name = training_run_version_name(run)
    if not ModelVersion.objects.filter(name=name).exists():
        store.delete_prefix_quietly(store.model_bundle_prefix(name))


def training_run_version_name(run: TrainingRun) -> str:
    """Unique per run, so two runs can never write one bundle."""
    stamp = (run.started_at or run.created_at).strftime("%Y%m%d-%H%M%S")
    return f"{run.options.get('architecture', 'model')}-run{run.pk}-{stamp}"


def training_runs_reap_stale(*, waiting: set[int] | None = None) -> dict[str, int]:
    """Fail runs whose worker stopped sending heartbeats; send again runs whose message was lost.

    ``waiting`` holds the ids of runs whose message is still in the broker; a queued run older than
    ``TRAINING_REQUEUE_AFTER`` that is not among them lost its message (Redis restarted empty) and is
    sent again. Without ``waiting`` nothing is re-sent. Run by Celery beat on the inference queue (the
    training worker may be the one that died) and by the training worker when it starts.
    """
    now = timezone.now()
    silent_since = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    stale = TrainingRun.objects.filter(status__in=RUN_IN_PROGRESS).filter(
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True)
    )
    failed = 0
    for run in stale:
        beat = run.heartbeat_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.heartbeat_at else "never"
        if training_run_finish(
            run_id=run.pk,
            status=RunStatus.FAILED,
            reason=f"The training worker ({run.worker or 'unknown'}) stopped responding: its last "
            f"heartbeat was at {beat}. The run was not restarted; nothing was registered.",
        ):
            training_run_clean_up(run=run)
            failed += 1
    requeued = 0
    if waiting is not None:
        lost_before = now - timedelta(seconds=settings.TRAINING_REQUEUE_AFTER)
        for run_id in TrainingRun.objects.filter(
            status=RunStatus.QUEUED, created_at__lt=lost_before
        ).values_list("pk", flat=True):
            if run_id not in waiting:
                # Were both to arrive, the run would still be claimed once.
                _enqueue_training(run_id)
                requeued += 1
    return {"failed": failed, "requeued": requeued}


def training_run_publish(*, run_id: int) -> None:
    """Push the run's state to every admin watching its page. Best effort: pages also poll."""
    run = (
        TrainingRun.objects.select_related("requested_by", "dataset", "snapshot__evaluation_set")
        .filter(pk=run_id)
        .first()
    )
    layer = get_channel_layer()
    if run is None or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            training_run_group_name(run), {"type": "state.update", "state": training_run_state(run)}
        )
    except Exception:
        logger.warning(
            "live push for training run %s failed; the page will poll", run_id, exc_info=True
        )
