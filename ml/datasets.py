"""Datasets: load labelled images from the supported layouts.

Supported layouts (``detect_and_load`` picks one):

* HAM10000 as published: ``HAM10000_metadata.csv`` (columns ``lesion_id``, ``image_id``,
  ``dx``, and optionally ``age``, ``sex``, ``localization``) at the root, images
  ``<image_id>.jpg`` / ``.png`` anywhere below the root (the download splits them into
  ``HAM10000_images_part_1`` and ``_part_2``).
* A labelled photo set, such as a confirmed-cases snapshot exported by the web app or photos
  from another source kept for evaluation: ``labels.csv`` at the root with columns ``image``
  (path relative to the root, ``/``-separated; ``file`` is accepted as an alias) and ``dx``
  (one of the seven class codes); optionally ``lesion_id`` (photos of the same lesion share it,
  so splits keep them together; without it each photo is its own lesion), ``image_id`` (else
  the file name names the photo) and ``age``, ``sex``, ``localization``. Other columns are
  ignored. Example::

      image,dx,lesion_id
      images/7f3a.jpg,mel,lesion-42

* One folder per class: ``<root>/<dx code>/<image>``; each image is its own lesion.

Every failure raises ``DatasetError`` with a message saying what is wrong and where; for the HAM10000
layout, ``DatasetProblems`` lists every unusable row, file and class at once (``audit_*`` below), so the
person fixing the data sees all of it, not the first problem only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ml.classes import CLASSES
from ml.preprocess import ImageDecodeError, decode_image

HAM_METADATA = "HAM10000_metadata.csv"
SNAPSHOT_LABELS = "labels.csv"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HAM_COLUMNS = ("lesion_id", "image_id", "dx")
# How many problems a message lists before it says "and N more"; the full list stays in `problems`.
SHOWN_PROBLEMS = 12


class DatasetError(ValueError):
    """A dataset is missing, malformed or empty."""


# Patient and lesion facts a dataset may carry (HAM10000's metadata columns), kept with each image so
# results can be broken down by them.
ATTRIBUTE_COLUMNS = ("localization", "age", "sex")


@dataclass(frozen=True)
class Sample:
    path: Path
    label_index: int
    lesion_id: str
    image_id: str
    # ATTRIBUTE_COLUMNS values the dataset gives for this image (absent or empty: unknown).
    attributes: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def dx(self) -> str:
        return CLASSES[self.label_index]


def sample_labels(samples: Sequence[Sample]) -> np.ndarray:
    """The class indices of ``samples``, in order."""
    return np.array([s.label_index for s in samples], dtype=np.int64)


def _progress(iterable: Iterable[Any], description: str) -> Iterable[Any]:
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, unit=" files", leave=False, mininterval=0.5)


def _label_index(dx: str, where: str) -> int:
    code = dx.strip().lower()
    if code not in CLASSES:
        raise DatasetError(f"{where}: unknown dx {dx!r}; expected one of {', '.join(CLASSES)}")
    return CLASSES.index(code)


def parse_csv(data: bytes | str, required: Sequence[str], name: str) -> list[dict[str, str]]:
    """Rows of a CSV with the ``required`` columns, cells stripped; raises ``DatasetError``."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(
                f"{name}: missing column(s) {', '.join(missing)}; found {columns or 'none'}"
            )
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{name}: not a readable CSV file: {exc}") from exc
    if not rows:
        raise DatasetError(f"{name}: no data rows, the dataset is empty")
    return rows


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    return parse_csv(path.read_bytes(), required, str(path))


def relative_files(root: Path) -> list[str]:
    """Every file below ``root`` as a "/"-separated path relative to it (links not followed)."""
    found = []
    walked = sorted(os.walk(root, followlinks=False))
    for directory, _subdirs, files in _progress(walked, f"scanning {root}"):
        base = Path(directory).relative_to(root)
        found.extend((base / name).as_posix() for name in sorted(files))
    return found


def index_image_paths(paths: Iterable[str]) -> dict[str, str]:
    """Map image stem -> path for the image files among ``paths``; in sorted order, the first wins."""
    found: dict[str, str] = {}
    for path in sorted(paths):
        stem, suffix = os.path.splitext(path.rsplit("/", 1)[-1])
        if suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(stem, path)
    return found


def require_dataset_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    return root


def load_ham10000(root: str | Path) -> list[Sample]:
    """Load the HAM10000 layout (see module docstring); every unusable row is reported at once."""
    root = require_dataset_dir(root)
    metadata = root / HAM_METADATA
    if not metadata.is_file():
        raise DatasetError(f"HAM10000 metadata not found: {metadata}")
    rows = parse_csv(metadata.read_bytes(), HAM_COLUMNS, str(metadata))
    entries, problems = audit_rows(rows, index_image_paths(relative_files(root)), str(metadata))
    if problems:
        raise DatasetProblems(str(root), problems)
    return [
        Sample(root / e.path, CLASSES.index(e.dx), e.lesion_id, e.image_id, dict(e.attributes))
        for e in entries
    ]


def _attributes(row: Mapping[str, str]) -> dict[str, str]:
    return {name: row[name] for name in ATTRIBUTE_COLUMNS if row.get(name)}


def load_class_folders(root: str | Path) -> list[Sample]:
    """Load ``<root>/<dx code>/<image>``; the image stem serves as image and lesion id."""
    root = require_dataset_dir(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name.lower() not in CLASSES]
    if unknown:
        raise DatasetError(
            f"{root}: folder(s) {', '.join(unknown)} are not class codes; "
            f"expected folders named {', '.join(CLASSES)}"
        )
    samples = []
    for folder in folders:
        label = CLASSES.index(folder.name.lower())
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(path, label, path.stem, path.stem))
    if not samples:
        raise DatasetError(f"{root}: no images found in the class folders")
    return samples


def load_confirmed_cases_snapshot(root: str | Path) -> list[Sample]:
    """Load ``labels.csv`` with ``image,dx,lesion_id`` (module docstring): a web-app snapshot, or a
    set of photos from elsewhere. Without ``lesion_id`` each photo is its own lesion; an
    ``image_id`` column names the photos (else the file names do); ATTRIBUTE_COLUMNS are kept."""
    root = require_dataset_dir(root)
    labels = root / SNAPSHOT_LABELS
    if not labels.is_file():
        raise DatasetError(f"snapshot labels not found: {labels}")
    with open(labels, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    image_column = "file" if "file" in header and "image" not in header else "image"
    rows = _read_csv(labels, (image_column, "dx"))
    resolved_root = root.resolve()
    samples = []
    missing = []
    for number, row in enumerate(rows, start=2):
        where = f"{labels} row {number}"
        relative = PurePosixPath(row[image_column])
        if not row[image_column] or relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{where}: image path must be relative to the snapshot root")
        path = root / relative
        if not path.resolve().is_relative_to(resolved_root):
            raise DatasetError(f"{where}: image path {relative} leaves the snapshot root")
        label = _label_index(row["dx"], where)
        if not path.is_file():
            missing.append(str(relative))
            continue
        image_id = row.get("image_id") or path.stem
        samples.append(
            Sample(path, label, row.get("lesion_id") or image_id, image_id, _attributes(row))
        )
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) listed in {labels} not found: {', '.join(missing[:5])}"
        )
    return samples


def detect_layout(root: str | Path) -> str:
    root = require_dataset_dir(root)
    if (root / HAM_METADATA).is_file():
        return "ham10000"
    if (root / SNAPSHOT_LABELS).is_file():
        return "snapshot"
    if any(p.is_dir() and p.name.lower() in CLASSES for p in root.iterdir()):
        return "folders"
    raise DatasetError(
        f"{root}: unrecognised dataset layout; expected {HAM_METADATA}, {SNAPSHOT_LABELS} "
        f"or one folder per class ({', '.join(CLASSES)})"
    )


def detect_and_load(root: str | Path) -> list[Sample]:
    loaders = {
        "ham10000": load_ham10000,
        "snapshot": load_confirmed_cases_snapshot,
        "folders": load_class_folders,
    }
    samples = loaders[detect_layout(root)](root)
    if not samples:
        raise DatasetError(f"{root}: the dataset is empty")
    return samples


def limit_per_class(samples: Sequence[Sample], limit: int, seed: int) -> list[Sample]:
    """Keep at most ``limit`` samples per class, chosen reproducibly, for quick runs."""
    order = np.random.default_rng(seed).permutation(len(samples))
    kept: list[Sample] = []
    counts: Counter[int] = Counter()
    for index in order:
        sample = samples[int(index)]
        if counts[sample.label_index] < limit:
            counts[sample.label_index] += 1
            kept.append(sample)
    return sorted(kept, key=lambda s: s.image_id)


def dataset_fingerprint(samples: Sequence[Sample]) -> str:
    """sha256 over labels, lesion ids and image bytes: equal fingerprints mean equal data."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.image_id):
        digest.update(f"{sample.image_id}\0{sample.dx}\0{sample.lesion_id}\0".encode())
        digest.update(hashlib.sha256(sample.path.read_bytes()).digest())
    return digest.hexdigest()


# --- checking a dataset before training -------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: (
        str  # missing_file, unknown_label, empty_id, duplicate_image, corrupt_image, too_few_images
    )
    where: str  # "HAM10000_metadata.csv row 12", a file path, or "class df"
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"

    def as_json(self) -> dict[str, str]:
        return asdict(self)


class DatasetProblems(DatasetError):
    """The dataset cannot be trained on; ``problems`` lists every reason, by row, file or class."""

    def __init__(
        self, source: str, problems: list[Problem], outcome: str = "nothing was trained"
    ) -> None:
        self.source = source
        self.problems = problems
        lines = [f"- {problem}" for problem in problems[:SHOWN_PROBLEMS]]
        if len(problems) > SHOWN_PROBLEMS:
            lines.append(f"- and {len(problems) - SHOWN_PROBLEMS} more")
        super().__init__(
            f"{source} has {len(problems)} problem(s); {outcome}:\n" + "\n".join(lines)
        )


@dataclass(frozen=True)
class AuditedImage:
    image_id: str
    lesion_id: str
    dx: str
    path: str  # relative to the dataset root, "/"-separated
    sha256: str = ""  # filled when the audit read the image
    attributes: tuple[tuple[str, str], ...] = ()  # ATTRIBUTE_COLUMNS given for it


def audit_rows(
    rows: list[dict[str, str]], images: Mapping[str, str], name: str = HAM_METADATA
) -> tuple[list[AuditedImage], list[Problem]]:
    """Match metadata rows to image files; every row that cannot be used is a problem."""
    entries: list[AuditedImage] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"{name} row {number}"
        image_id, lesion_id, dx = row["image_id"], row["lesion_id"], row["dx"].lower()
        if not image_id or not lesion_id:
            problems.append(Problem("empty_id", where, "empty image_id or lesion_id"))
            continue
        if dx not in CLASSES:
            problems.append(
                Problem(
                    "unknown_label",
                    where,
                    f"unknown dx {row['dx']!r} for {image_id}; expected one of {', '.join(CLASSES)}",
                )
            )
            continue
        if image_id in seen:
            problems.append(
                Problem(
                    "duplicate_image",
                    where,
                    f"{image_id} is listed again (first in row {seen[image_id]})",
                )
            )
            continue
        seen[image_id] = number
        path = images.get(image_id)
        if path is None:
            problems.append(
                Problem(
                    "missing_file",
                    where,
                    f"image {image_id} not found (looked for {image_id}.jpg, .jpeg or .png "
                    "anywhere below the dataset folder)",
                )
            )
            continue
        entries.append(
            AuditedImage(image_id, lesion_id, dx, path, attributes=tuple(_attributes(row).items()))
        )
    return entries, problems


def audit_image_files(
    entries: list[AuditedImage],
    read: Callable[[str], bytes],
    *,
    keep: Callable[[AuditedImage, bytes], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[AuditedImage], list[Problem]]:
    """Read and decode every image; hash the good ones (``keep`` gets their bytes), name the bad ones."""
    good: list[AuditedImage] = []
    problems: list[Problem] = []
    for done, entry in enumerate(entries, start=1):
        data = read(entry.path)
        try:
            decode_image(data)
        except ImageDecodeError as exc:
            problems.append(Problem("corrupt_image", entry.path, f"{entry.image_id}: {exc}"))
            continue
        audited = AuditedImage(
            entry.image_id,
            entry.lesion_id,
            entry.dx,
            entry.path,
            hashlib.sha256(data).hexdigest(),
            entry.attributes,
        )
        if keep is not None:
            keep(audited, data)
        good.append(audited)
        if progress is not None:
            progress(done, len(entries))
    return good, problems


def class_count_problems(labels: Iterable[str], minimum: int, what: str) -> list[Problem]:
    """One problem per class with fewer than ``minimum`` images in ``what``."""
    counts = Counter(labels)
    return [
        Problem(
            "too_few_images",
            f"class {dx}",
            f"{counts[dx]} image(s) in {what}; at least {minimum} are needed to train and validate",
        )
        for dx in CLASSES
        if counts[dx] < minimum
    ]
