"""The registry: register bundles with their evaluations, promote, roll back, activate."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from ml.bundle import BundleError, pack_bundle, read_manifest
from ml.classes import CLASSES
from webapp.accounts.models import User
from webapp.config.celery import EVALUATE_TASK, enqueue_or_refuse
from webapp.modelops.judging import promotion_gate
from webapp.modelops.models import (
    ModelEvaluation,
    ModelEvent,
    ModelEventAction,
    ModelStatus,
    ModelVersion,
    TrainingRun,
)
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.common import (
    NAME_PATTERN,
    ModelOpsError,
    PromotionRefused,
    require_admin,
)
from webapp.modelops.signals import model_version_activated
from webapp.storage import store

logger = logging.getLogger(__name__)

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
    """Have the training worker evaluate ``version`` on the frozen sets (an imported model, say)."""
    require_admin(requested_by)
    model_version_queue_evaluation(version=version)


def model_version_queue_evaluation(*, version: ModelVersion) -> None:
    """Queue ``version``'s evaluation on every set it lacks numbers on, once the caller commits."""
    transaction.on_commit(lambda: enqueue_or_refuse(EVALUATE_TASK, version.pk))
