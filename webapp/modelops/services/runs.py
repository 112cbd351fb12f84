"""Training runs: the requests people make, and the worker's side of a run's life."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ml.training_config import ConfigError, TrainConfig, preset_options
from webapp.accounts.models import User
from webapp.config.celery import TRAIN_TASK, enqueue_quietly
from webapp.live import push_changes
from webapp.modelops.models import (
    RUN_IN_PROGRESS,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    Dataset,
    ModelVersion,
    RunStatus,
    TrainingRun,
)
from webapp.modelops.selectors import (
    training_run_group_name,
)
from webapp.modelops.services.common import (
    InvalidRunState,
    ModelOpsError,
    require_admin,
)
from webapp.storage import store

logger = logging.getLogger(__name__)

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
        "fit",
        "random_crops",
        "colour_constancy",
        "tta",
        "top_class",
        "loss",
        "sampling",
    }
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
    # By id only: the worker re-reads the row (and who asked) before it trains anything. With the broker
    # down the run stays queued, and the reaper sends it after TRAINING_REQUEUE_AFTER.
    enqueue_quietly(TRAIN_TASK, run_id)


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
    """Tell every admin watching the run's page that it changed (their sockets read it again).
    Best effort: pages also poll."""
    public_id = TrainingRun.objects.filter(pk=run_id).values_list("public_id", flat=True).first()
    if public_id is not None:
        push_changes([training_run_group_name(public_id)], what=f"training run {run_id}")
