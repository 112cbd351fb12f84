"""Registering photos from other sources as an evaluation set the gate checks beside the held-out one.

A model judged only on its own dataset's split looks better than it is on photos from other clinics and
cameras. An admin registers such a set once (a folder with ``labels.csv``, the layout
``ml.datasets.load_confirmed_cases_snapshot`` reads); every photo is read, decoded and hashed, and all
problems are reported together before anything is stored. The photos are then copied into the object
store by content hash, so the set stays the same whatever happens to the folder, and the set itself is
named by the hash of its contents. Training snapshots leave these photos out (``snapshots``); runs
may choose thresholds on them, never train on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from django.db import IntegrityError, transaction

from ml.classes import CLASSES
from ml.datasets import (
    SNAPSHOT_LABELS,
    AuditedImage,
    DatasetError,
    DatasetProblems,
    Problem,
    audit_image_files,
    load_confirmed_cases_snapshot,
)
from webapp.accounts.models import User
from webapp.errors import ApplicationError
from webapp.modelops.models import EvaluationSet, EvaluationSetKind
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.common import NAME_PATTERN, ModelOpsError
from webapp.modelops.services.registry import model_version_queue_evaluation
from webapp.modelops.snapshots import canonical_sha256
from webapp.storage import store

Say = Callable[[str], None]


def _audit(folder: Path) -> list[dict]:
    """Every photo of the folder as an item, or ``DatasetProblems`` naming each bad one."""
    if not (folder / SNAPSHOT_LABELS).is_file():
        raise DatasetError(
            f"{folder / SNAPSHOT_LABELS} not found: the folder needs {SNAPSHOT_LABELS} (columns image "
            "and dx; optionally lesion_id, image_id) and the photos it names"
        )
    samples = load_confirmed_cases_snapshot(folder)
    entries = [
        AuditedImage(s.image_id, s.lesion_id, s.dx, s.path.relative_to(folder).as_posix())
        for s in samples
    ]
    # The dataset audit's own checks: every photo read, decoded and hashed, the bad ones named.
    good, problems = audit_image_files(entries, lambda path: (folder / path).read_bytes())
    items: list[dict] = []
    first_seen: dict[str, str] = {}
    for image in good:
        if image.sha256 in first_seen:
            # The same photo twice would count twice in every number the gate compares.
            problems.append(
                Problem(
                    "duplicate_image", image.path, f"the same photo as {first_seen[image.sha256]}"
                )
            )
            continue
        first_seen[image.sha256] = image.path
        suffix = PurePosixPath(image.path).suffix.lower() or ".jpg"
        items.append(
            {
                "source": "external",
                "image_id": image.image_id,
                "lesion_id": image.lesion_id,
                "dx": image.dx,
                "path": store.external_image_key(image.sha256, suffix),
                "sha256": image.sha256,
                "local": folder / image.path,
            }
        )
    # Balanced accuracy averages the seven classes: a set without one of them cannot give it.
    present = {item["dx"] for item in items}
    problems += [
        Problem("missing_class", f"class {dx}", "no usable photo; every class needs at least one")
        for dx in CLASSES
        if dx not in present
    ]
    if problems:
        raise DatasetProblems(str(folder), problems, outcome="nothing was registered")
    return sorted(items, key=lambda item: item["image_id"])


def external_set_register(
    *,
    name: str,
    folder: Path,
    description: str = "",
    registered_by: User | None = None,
    say: Say = lambda message: None,
) -> EvaluationSet:
    """Freeze ``folder``'s labelled photos as the external evaluation set; queue the active model's
    evaluation on it, so the gate can compare the next candidate at once."""
    if not NAME_PATTERN.match(name):
        raise ModelOpsError(
            f"Name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (max 80)."
        )
    if EvaluationSet.objects.filter(kind=EvaluationSetKind.EXTERNAL, name=name).exists():
        raise ModelOpsError(f"An external evaluation set named {name!r} is already registered.")
    try:
        items = _audit(Path(folder))
    except DatasetError as exc:
        raise ModelOpsError(str(exc)) from exc
    say(f"checked {len(items)} photos in {folder}")
    # The photos and their labels make the set (its name lives in the database).
    digest, data = canonical_sha256(
        {
            "kind": "external-evaluation-set",
            "items": [{k: v for k, v in item.items() if k != "local"} for item in items],
        }
    )
    existing = EvaluationSet.objects.filter(sha256=digest).first()
    if existing is not None:
        raise ModelOpsError(f"These photos are already registered as {existing}.")
    for done, item in enumerate(items, start=1):
        # Content-addressed keys: an object already there holds these very bytes.
        if not store.exists(item["path"], what=f"photo {item['image_id']}"):
            store.put_new(
                item["path"], item["local"].read_bytes(), what=f"photo {item['image_id']}"
            )
        if done % 100 == 0 or done == len(items):
            say(f"stored {done} of {len(items)} photos")
    key = store.evaluation_set_key(digest)
    if not store.exists(key, what="the external evaluation set"):
        store.put_new(key, data, what="the external evaluation set")
    counts = Counter(item["dx"] for item in items)
    try:
        with transaction.atomic():
            evaluation_set = EvaluationSet.objects.create(
                kind=EvaluationSetKind.EXTERNAL,
                name=name,
                description=description,
                registered_by=registered_by,
                sha256=digest,
                key=key,
                image_count=len(items),
                class_counts={dx: counts[dx] for dx in CLASSES},
            )
    except IntegrityError as exc:
        raise ModelOpsError(
            f"These photos or the name {name!r} were registered meanwhile."
        ) from exc
    active = model_version_get_active()
    if active is not None:
        try:
            model_version_queue_evaluation(version=active)
        except ApplicationError as exc:  # the set stands; the evaluation can be asked for again
            say(f"could not queue the active model's evaluation ({exc}); use Evaluate on its page")
        else:
            say(f"queued the evaluation of the active model {active.name} on it")
    return evaluation_set
