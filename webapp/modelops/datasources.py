"""Reading a registered dataset's files, wherever it lives: a server folder or a prefix in the bucket.

Paths handed around are "/"-separated and relative to the dataset's root; a path that would leave the root
is refused, so a metadata file cannot make the worker read elsewhere on the server or in the bucket.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from django.conf import settings

from ml.datasets import HAM_METADATA, DatasetError, relative_files
from webapp.modelops.models import Dataset, DatasetLocation
from webapp.storage import store


def _check_relative(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise DatasetError(f"refusing the path {path!r}: it must stay inside the dataset")
    return path


class FolderSource:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.root = Path(dataset.location)

    def describe(self) -> str:
        return f"dataset {self.dataset.name} (folder {self.root})"

    def list_files(self) -> list[str]:
        if not self.root.is_dir():
            raise DatasetError(f"{self.describe()}: the folder does not exist on this server")
        return relative_files(self.root)

    def read(self, path: str) -> bytes:
        target = self.root / _check_relative(path)
        try:
            return target.read_bytes()
        except OSError as exc:
            raise DatasetError(f"{self.describe()}: cannot read {path}: {exc.strerror}") from exc


class S3Source:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.prefix = dataset.location.strip("/")

    def describe(self) -> str:
        return f"dataset {self.dataset.name} (s3 prefix {self.prefix or '/'})"

    def list_files(self) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        return [
            key[len(start) :]
            for key, _size in store.list_prefix(start, what=self.describe())
            if not key.endswith("/")
        ]

    def read(self, path: str) -> bytes:
        key = store.dataset_object_key(self.prefix, _check_relative(path))
        return store.read(key, what=f"{path} of {self.describe()}")


def dataset_source(dataset: Dataset) -> FolderSource | S3Source:
    if dataset.location_kind == DatasetLocation.S3:
        return S3Source(dataset)
    return FolderSource(dataset)


def check_location(*, location_kind: str, location: str) -> str:
    """Refuse a location that cannot hold a HAM10000-layout dataset; return it normalised."""
    if location_kind == DatasetLocation.FOLDER:
        folder = Path(location)
        if not folder.is_absolute():
            raise DatasetError(f"{location!r} is not an absolute folder path")
        roots = settings.DATASET_FOLDER_ROOTS
        if roots and not any(folder.resolve().is_relative_to(r.resolve()) for r in roots):
            allowed = ", ".join(str(r) for r in roots)
            raise DatasetError(
                f"{folder} is outside the folders datasets may come from ({allowed})"
            )
        if not (folder / HAM_METADATA).is_file():
            raise DatasetError(
                f"{folder / HAM_METADATA} not found: the folder is not in the HAM10000 layout"
            )
        return str(folder)
    if location_kind == DatasetLocation.S3:
        prefix = location.strip("/")
        if prefix and ".." in PurePosixPath(prefix).parts:
            raise DatasetError(f"{location!r} is not a usable key prefix")
        key = store.dataset_object_key(prefix, HAM_METADATA)
        if not store.exists(key, what=f"the metadata of prefix {prefix or '/'}"):
            raise DatasetError(
                f"{key} not found in the bucket: the prefix is not in the HAM10000 layout"
            )
        return prefix
    raise DatasetError(f"unknown location kind {location_kind!r}")
