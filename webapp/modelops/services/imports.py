"""Models uploaded on the Models page: store the files and queue their check on the training worker."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.preprocess import INPUT_SCALINGS
from webapp.accounts.models import User
from webapp.config.celery import IMPORT_TASK, enqueue_quietly, resend_missing
from webapp.modelops.models import (
    ImportKind,
    ImportStatus,
    ModelImport,
    ModelVersion,
)
from webapp.modelops.services.common import (
    NAME_PATTERN,
    ModelOpsError,
    require_admin,
)
from webapp.storage import store

logger = logging.getLogger(__name__)

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


def import_enqueue(import_id: int) -> bool:
    # Its row stays queued when the broker is down; the reconciler sends it later.
    return enqueue_quietly(IMPORT_TASK, import_id)


def imports_requeue_stuck(*, in_broker: set[int]) -> int:
    """The reconciler's pass over model imports: send again the queued ones whose job the broker
    no longer holds, `CASE_REQUEUE_AFTER` seconds after they were uploaded."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.CASE_REQUEUE_AFTER)
    ids = ModelImport.objects.filter(
        status=ImportStatus.QUEUED, created_at__lte=cutoff
    ).values_list("pk", flat=True)
    return resend_missing(ids, in_broker, import_enqueue)


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
            transaction.on_commit(lambda: import_enqueue(record.pk))
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
