import re
import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from ml.manifest import BundleError, pack_bundle, read_manifest
from webapp.modelops.models import ModelStatus, ModelVersion

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def model_version_register(
    *,
    bundle_dir: Path,
    name: str | None = None,
    created_by=None,
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """Verify a bundle directory, upload it as a zip under a new key and record it as a candidate."""
    manifest = read_manifest(bundle_dir)  # raises BundleError on any hash mismatch
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
        key = f"models/{name}/{digest}.zip"
        with zip_path.open("rb") as fh:
            stored_key = default_storage.save(key, File(fh, name="bundle.zip"))
    try:
        return ModelVersion.objects.create(
            name=name,
            architecture=manifest["architecture"],
            bundle_key=stored_key,
            sha256=digest,
            manifest=manifest,
            metrics=manifest.get("metrics") or {},
            parent=parent,
            created_by=created_by,
        )
    except Exception:
        default_storage.delete(stored_key)
        raise


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the one model that answers; the previous one is retired (and can be re-activated)."""
    ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).exclude(
        pk=version.pk
    ).update(status=ModelStatus.RETIRED)
    version.status = ModelStatus.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])

    # Cases uploaded while no model was active are waiting: hand them to the workers now.
    from webapp.cases.services import case_enqueue_waiting

    transaction.on_commit(case_enqueue_waiting)
    return version
