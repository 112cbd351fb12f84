"""Freezing the data of a training run, and the evaluation set every candidate is judged on.

When a run starts, its dataset is audited (every row and image; all problems reported at once), the frozen
evaluation set is carved out the first time (by lesion, stratified by class), and what is left becomes the
run's snapshot: image references, labels and content hashes, stored in S3 under their own sha256. A repeat
run reads the same snapshot and checks every image against its hash, so it trains on exactly that data.

Images are kept once on the training worker's disk, named by content hash; each snapshot folder (the layout
`ml.datasets.load_confirmed_cases_snapshot` reads) is hard links into that store.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import IntegrityError, transaction

from ml.classes import CLASSES
from ml.datasets import (
    ATTRIBUTE_COLUMNS,
    HAM_COLUMNS,
    HAM_METADATA,
    SNAPSHOT_LABELS,
    DatasetError,
    DatasetProblems,
    Problem,
    Sample,
    audit_image_files,
    audit_rows,
    class_count_problems,
    index_image_paths,
    parse_csv,
)
from ml.preprocess import ImageDecodeError, decode_image
from ml.splits import grouped_stratified_split
from webapp.modelops.datasources import dataset_source
from webapp.modelops.judging import evaluation_set_current, external_set_current, external_sets
from webapp.modelops.models import Dataset, DatasetSnapshot, EvaluationSet, TrainingRun
from webapp.storage import store

Say = Callable[[str], None]


class SnapshotChanged(DatasetError):
    """An image of a frozen snapshot is gone or no longer matches its recorded hash."""


@dataclass(frozen=True)
class FrozenData:
    snapshot: DatasetSnapshot
    evaluation_set: EvaluationSet
    train_dir: Path
    evaluation_dir: Path
    # Photos from other sources, when an admin registered some: thresholds are chosen on them too.
    external_set: EvaluationSet | None = None
    external_dir: Path | None = None


def canonical_sha256(payload: dict) -> tuple[str, bytes]:
    """The hash that names a frozen set, and the bytes stored under it."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest(), data


def _dataset_identity(dataset: Dataset) -> dict:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "location_kind": dataset.location_kind,
        "location": dataset.location,
    }


def _work_dir(*parts: str) -> Path:
    return Path(settings.TRAINING_WORK_DIR).joinpath(*parts)


def _object_path(sha256: str, path: str) -> Path:
    suffix = PurePosixPath(path).suffix.lower() or ".jpg"
    return _work_dir("objects", sha256[:2], f"{sha256}{suffix}")


def _keep(sha256: str, path: str, data: bytes) -> Path:
    """Store image bytes once, by content hash (write then rename: never a half-written image)."""
    target = _object_path(sha256, path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


# --- the audit ----------------------------------------------------------------------------------------


def _audit_dataset(dataset: Dataset, say: Say, check_stop: Callable[[], None]) -> list[dict]:
    """Every usable image of ``dataset`` as an item; raises ``DatasetProblems`` naming every bad one."""
    source = dataset_source(dataset)
    say(f"listing the files of {source.describe()}")
    files = source.list_files()
    if HAM_METADATA not in files:
        raise DatasetError(f"{source.describe()}: {HAM_METADATA} not found at its root")
    rows = parse_csv(source.read(HAM_METADATA), HAM_COLUMNS, HAM_METADATA)
    entries, problems = audit_rows(rows, index_image_paths(files), HAM_METADATA)
    say(f"checking {len(entries)} images listed in {HAM_METADATA} ({len(rows)} rows)")

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            say(f"checked {done} of {total} images")
            check_stop()

    images, bad_images = audit_image_files(
        entries,
        source.read,
        keep=lambda image, data: _keep(image.sha256, image.path, data),
        progress=progress,
    )
    problems += bad_images
    if problems:
        raise DatasetProblems(source.describe(), problems)
    return [
        {
            "source": "dataset",
            "image_id": image.image_id,
            "lesion_id": image.lesion_id,
            "dx": image.dx,
            "path": image.path,
            "sha256": image.sha256,
            # Body site, age and sex: the evaluation report breaks results down by them.
            "attributes": dict(image.attributes),
        }
        for image in sorted(images, key=lambda i: i.image_id)
    ]


def _audit_cases(items: list[dict], say: Say) -> list[dict]:
    """Check the photos of confirmed cases like dataset images: present, unchanged, decodable."""
    say(f"checking {len(items)} photos of cases clinicians have confirmed")
    problems: list[Problem] = []
    good = []
    for item in items:
        where = f"case {item['image_id'].removeprefix('case-')}"
        try:
            data = store.read(item["path"], what=f"the photo of {where}")
        except store.ObjectMissing:
            problems.append(Problem("missing_file", where, "its stored photo is gone"))
            continue
        if hashlib.sha256(data).hexdigest() != item["sha256"]:
            problems.append(
                Problem("changed_image", where, "its stored photo no longer matches its hash")
            )
            continue
        try:
            decode_image(data)
        except ImageDecodeError as exc:
            problems.append(Problem("corrupt_image", where, str(exc)))
            continue
        _keep(item["sha256"], item["path"], data)
        good.append(item)
    if problems:
        raise DatasetProblems("the confirmed cases", problems)
    return good


# --- the evaluation set -------------------------------------------------------------------------------


def _evaluation_set_ensure(dataset: Dataset, items: list[dict]) -> EvaluationSet:
    current = evaluation_set_current()
    if current is not None:
        return current
    samples = [
        Sample(Path(item["path"]), CLASSES.index(item["dx"]), item["lesion_id"], item["image_id"])
        for item in items
    ]
    split = grouped_stratified_split(
        samples,
        val_fraction=0.0,
        test_fraction=settings.EVALUATION_SET_FRACTION,
        seed=settings.EVALUATION_SET_SEED,
    )
    chosen = {s.image_id for s in split.test}
    payload = {
        "kind": "evaluation-set",
        "dataset": _dataset_identity(dataset),
        "fraction": settings.EVALUATION_SET_FRACTION,
        "seed": settings.EVALUATION_SET_SEED,
        "grouped_by": "lesion_id",
        "items": [item for item in items if item["image_id"] in chosen],
    }
    digest, data = canonical_sha256(payload)
    key = store.evaluation_set_key(digest)
    if not store.exists(key, what="the evaluation set"):
        store.put_new(key, data, what="the evaluation set")
    counts = Counter(item["dx"] for item in payload["items"])
    try:
        with transaction.atomic():
            return EvaluationSet.objects.create(
                dataset=dataset,
                sha256=digest,
                key=key,
                image_count=len(payload["items"]),
                class_counts={dx: counts[dx] for dx in CLASSES},
            )
    except IntegrityError:
        # Another run froze the same set at the same moment; it is the same data.
        return EvaluationSet.objects.get(sha256=digest)


def evaluation_items(evaluation_set: EvaluationSet) -> list[dict]:
    payload = store.read_json(evaluation_set.key, what=f"{evaluation_set}")
    return payload["items"]


# --- snapshots ----------------------------------------------------------------------------------------


def _snapshot_create(
    run: TrainingRun, items: list[dict], evaluation_set: EvaluationSet
) -> DatasetSnapshot:
    held_out = evaluation_items(evaluation_set)
    externals = _external_photo_hashes()
    # Photos from other sources are never trained on, wherever else they turn up.
    held_out_hashes = {item["sha256"] for item in held_out}.union(*externals.values())
    # Lesion ids are only comparable within one dataset; images are compared by content everywhere.
    held_out_lesions = (
        {item["lesion_id"] for item in held_out}
        if evaluation_set.dataset_id == run.dataset_id
        else set()
    )
    training = [
        item
        for item in items
        if item["sha256"] not in held_out_hashes and item["lesion_id"] not in held_out_lesions
    ]
    problems: list[Problem] = class_count_problems(
        (item["dx"] for item in training),
        settings.TRAINING_MIN_IMAGES_PER_CLASS,
        "the training data (the evaluation set left out)",
    )
    if problems:
        raise DatasetProblems(f"dataset {run.dataset.name}", problems)
    payload = {
        "kind": "training-snapshot",
        "dataset": _dataset_identity(run.dataset),
        "evaluation_set": evaluation_set.sha256,
        "items": training,
    }
    if externals:
        payload["external_sets_left_out"] = sorted(external.sha256 for external in externals)
    digest, data = canonical_sha256(payload)
    key = store.snapshot_key(digest)
    if not store.exists(key, what="the dataset snapshot"):
        store.put_new(key, data, what="the dataset snapshot")
    counts = Counter(item["dx"] for item in training)
    snapshot, _ = DatasetSnapshot.objects.get_or_create(
        sha256=digest,
        defaults={
            "key": key,
            "dataset": run.dataset,
            "evaluation_set": evaluation_set,
            "image_count": len(training),
            "class_counts": {dx: counts[dx] for dx in CLASSES},
            "confirmed_case_count": sum(1 for item in training if item["source"] == "case"),
        },
    )
    return snapshot


def _fetch(dataset: Dataset | None, item: dict) -> Path:
    """The local copy of one item's image, read again from its source when this disk lacks it.

    Photos of cases and of external sets live in the store; dataset images in their dataset."""
    target = _object_path(item["sha256"], item["path"])
    if target.exists():
        return target
    if item["source"] in ("case", "external"):
        data = store.read(item["path"], what=f"the photo {item['image_id']}")
        origin = "the object store"
    else:
        data = dataset_source(dataset).read(item["path"])
        origin = f"dataset {dataset.name}"
    if hashlib.sha256(data).hexdigest() != item["sha256"]:
        raise SnapshotChanged(
            f"{item['path']} of {origin} changed since the data was frozen "
            f"(sha256 {item['sha256'][:12]}…); repeat the run on a new snapshot instead"
        )
    return _keep(item["sha256"], item["path"], data)


def _materialise(kind: str, digest: str, dataset: Dataset | None, items: list[dict]) -> Path:
    """A folder in the web-app snapshot layout (labels.csv + images/), complete or absent."""
    target = _work_dir(kind, digest)
    if (target / SNAPSHOT_LABELS).is_file():
        return target
    staging = target.with_name(f".{digest}.{uuid.uuid4().hex[:8]}")
    (staging / "images").mkdir(parents=True)
    try:
        rows = []
        for item in items:
            source_file = _fetch(dataset, item)
            name = f"images/{item['image_id']}{source_file.suffix}"
            os.link(source_file, staging / name)
            attributes = item.get("attributes") or {}
            rows.append(
                (
                    name,
                    item["dx"],
                    item["lesion_id"],
                    *(attributes.get(column, "") for column in ATTRIBUTE_COLUMNS),
                )
            )
        with open(staging / SNAPSHOT_LABELS, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "dx", "lesion_id", *ATTRIBUTE_COLUMNS])
            writer.writerows(rows)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / SNAPSHOT_LABELS).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _external_photo_hashes() -> dict[EvaluationSet, set[str]]:
    """The content hashes of every registered external set's photos, by set."""
    return {
        external: {item["sha256"] for item in evaluation_items(external)}
        for external in external_sets()
    }


def _refuse_external_photos(snapshot: DatasetSnapshot, items: list[dict]) -> None:
    """A snapshot frozen before an external set was registered may hold some of its photos."""
    hashes = {item["sha256"] for item in items}
    for external, photos in _external_photo_hashes().items():
        shared = hashes & photos
        if shared:
            raise DatasetError(
                f"snapshot {snapshot.sha256[:12]} holds {len(shared)} photo(s) of {external}, "
                "registered since it was frozen; start a new run instead of repeating this one, "
                "so they are left out"
            )


def data_freeze(
    run: TrainingRun,
    *,
    say: Say,
    check_stop: Callable[[], None],
    confirmed_cases: list[dict] | None = None,
) -> FrozenData:
    """Audit and freeze the run's data (or re-check a repeated run's snapshot) on this worker's disk.

    ``confirmed_cases`` are training items for photos clinicians have diagnosed; they join the snapshot
    (never the evaluation set) when the run asked for them."""
    if run.snapshot is not None:
        snapshot = run.snapshot
        evaluation_set = snapshot.evaluation_set
        say(f"repeating on snapshot {snapshot.sha256[:12]} ({snapshot.image_count} images)")
        items = store.read_json(snapshot.key, what=f"{snapshot}")["items"]
        _refuse_external_photos(snapshot, items)
    else:
        items = _audit_dataset(run.dataset, say, check_stop)
        evaluation_set = _evaluation_set_ensure(run.dataset, items)
        if run.include_confirmed_cases:
            items += _audit_cases(confirmed_cases or [], say)
        snapshot = _snapshot_create(run, items, evaluation_set)
        items = store.read_json(snapshot.key, what=f"{snapshot}")["items"]
        say(
            f"froze snapshot {snapshot.sha256[:12]}: {snapshot.image_count} training images; "
            f"evaluation set {evaluation_set.sha256[:12]} ({evaluation_set.image_count} images) "
            "left out"
        )
    check_stop()
    train_dir = _materialise("snapshots", snapshot.sha256, run.dataset, items)
    external_set = external_set_current()
    return FrozenData(
        snapshot,
        evaluation_set,
        train_dir,
        evaluation_set_materialise(evaluation_set),
        external_set,
        evaluation_set_materialise(external_set) if external_set else None,
    )


def evaluation_set_materialise(evaluation_set: EvaluationSet) -> Path:
    return _materialise(
        "evaluation-sets",
        evaluation_set.sha256,
        evaluation_set.dataset,
        evaluation_items(evaluation_set),
    )
