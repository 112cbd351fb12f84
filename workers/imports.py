"""Check, convert and register a model an admin uploaded: the service the `modelops.import_model` task calls.

Checked as the command line checks it: a bundle's every file against its manifest, and its model against the
manifest's classes and input size; a Keras file or JSON + H5 pair through `ml.bundle.import_model_files`
(Lambda layers refused, 7 outputs, square input). Judged on the evaluation set before it is registered; the
uploaded files are deleted afterwards either way.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.utils import timezone

from ml.bundle import BundleError, unpack_bundle
from ml.onnx_export import CHECK_IMAGES
from webapp.errors import NotPermitted
from webapp.modelops.judging import evaluation_set_current
from webapp.modelops.models import ImportKind, ImportStatus, ModelImport
from webapp.modelops.services.common import require_admin
from webapp.modelops.services.imports import model_import_claim, model_import_finish
from webapp.modelops.services.registry import model_version_register
from webapp.modelops.snapshots import evaluation_set_materialise
from webapp.storage import store
from workers.evaluation import evaluate_bundle_on_set
from workers.outcomes import Outcome

logger = logging.getLogger(__name__)


def _check_images(evaluation_set) -> list[Path]:
    """Real photos to check an ONNX export on: the first few of the evaluation set, if any."""
    if evaluation_set is None:
        return []
    images = sorted((evaluation_set_materialise(evaluation_set) / "images").iterdir())
    return images[:CHECK_IMAGES]


def _bundle_from_uploads(
    record: ModelImport, files: dict[str, Path], scratch: Path, check_images: list[Path]
) -> Path:
    from ml.bundle.keras_io import (  # Keras: worker only
        add_onnx_export,
        import_model_files,
        load_bundle,
    )

    if record.kind == ImportKind.BUNDLE:
        bundle_dir = unpack_bundle(files["bundle"], scratch / "bundle")
        load_bundle(bundle_dir)  # the model must match its manifest's classes and input size
        add_onnx_export(bundle_dir, check_images)  # bundles from older code come without one
        return bundle_dir
    return import_model_files(
        scratch / "bundle",
        architecture=record.architecture,
        json_path=files.get("json"),
        weights_path=files.get("weights"),
        model_path=files.get("model"),
        input_scale=record.input_scale,
        check_images=check_images,
    )


def import_upload(*, import_id: int) -> str:
    record = model_import_claim(import_id=import_id)
    if record is None:
        return Outcome.NOT_QUEUED
    try:
        require_admin(record.requested_by)
        with tempfile.TemporaryDirectory(prefix="skinsight-import-") as scratch:
            files = {}
            for role, key in record.uploads.items():
                files[role] = Path(scratch) / key.rsplit("/", 1)[-1]
                store.download(key, files[role], what=f"the uploaded {role} file")
            evaluation_set = evaluation_set_current()
            bundle_dir = _bundle_from_uploads(
                record, files, Path(scratch), _check_images(evaluation_set)
            )
            name = record.name or (
                f"{record.architecture}-import{record.pk}-{timezone.now():%Y%m%d-%H%M%S}"
            )
            evaluations = (
                [
                    evaluate_bundle_on_set(
                        bundle_dir=bundle_dir, evaluation_set=evaluation_set, version_name=name
                    )
                ]
                if evaluation_set
                else []
            )
            version = model_version_register(
                bundle_dir=bundle_dir,
                name=name,
                created_by=record.requested_by,
                evaluations=evaluations,
            )
    except NotPermitted:
        model_import_finish(
            import_id=import_id,
            status=ImportStatus.FAILED,
            reason=f"Refused: {record.requested_by.username} is not (or no longer) an administrator.",
        )
        return Outcome.FAILED
    except (BundleError, store.StorageUnavailable) as exc:
        model_import_finish(import_id=import_id, status=ImportStatus.FAILED, reason=str(exc))
        return Outcome.FAILED
    except Exception as exc:
        logger.exception("model import %s failed unexpectedly", import_id)
        model_import_finish(
            import_id=import_id,
            status=ImportStatus.FAILED,
            reason=f"Unexpected error: {type(exc).__name__}: {exc}. The worker log has the details.",
        )
        return Outcome.FAILED
    finally:
        for key in record.uploads.values():
            store.delete_quietly(key)
    judged = (
        "judged on the evaluation set"
        if evaluations
        else "no evaluation set exists yet to judge it"
    )
    model_import_finish(
        import_id=import_id,
        status=ImportStatus.SUCCEEDED,
        reason=f"Registered as candidate {version.name}; {judged}.",
        version=version,
    )
    return Outcome.SUCCEEDED
