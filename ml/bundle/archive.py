"""Packing a bundle into a zip, unpacking one safely, and opening one for use.

Pure standard library, like the manifest: the web process packs and unpacks bundles.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ml.bundle.manifest import (
    CHUNK,
    MANIFEST_NAME,
    BundleError,
    file_sha256,
    is_safe_relative,
    manifest_sha256,
    read_manifest,
    verify_files,
)

# A bundle is a few hundred MB at most (DenseNet169 is ~60 MB); anything far larger in a zip
# is a decompression bomb or the wrong file.
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3


def pack_bundle(bundle_dir: str | Path, zip_path: str | Path) -> str:
    """Zip a verified bundle (files at the archive root) and return the zip's sha256."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir, verify=True)
    zip_path = Path(zip_path)
    names = [MANIFEST_NAME, *sorted(manifest["files"])]
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(bundle_dir / name, arcname=name)
    return file_sha256(zip_path)


def unpack_bundle(
    zip_path: str | Path,
    dest_dir: str | Path,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path:
    """Extract a bundle zip into ``dest_dir`` (new or empty) and verify it.

    Every member is checked before anything is written: absolute paths, ``..``, symbolic
    links and oversized members are refused, because the zip may come from shared storage.
    """
    zip_path = Path(zip_path)
    dest_dir = Path(dest_dir)
    if not zip_path.is_file():
        raise BundleError(f"bundle archive does not exist: {zip_path}")
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise BundleError(f"refusing to unpack into non-empty directory {dest_dir}")
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{zip_path} is not a valid zip archive: {exc}") from exc
    with archive:
        members = archive.infolist()
        total = 0
        for info in members:
            _check_member(zip_path, info, max_member_bytes)
            total += info.file_size
        if total > max_total_bytes:
            raise BundleError(
                f"{zip_path}: members total {total} bytes, more than the {max_total_bytes} allowed"
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        for info in members:
            if info.is_dir():
                continue
            target = dest_dir / PurePosixPath(info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
    read_manifest(dest_dir, verify=True)
    return dest_dir


def _check_member(zip_path: Path, info: zipfile.ZipInfo, max_member_bytes: int) -> None:
    name = info.filename
    if not is_safe_relative(name.rstrip("/")):
        raise BundleError(f"{zip_path}: refusing unsafe member path {name!r}")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BundleError(f"{zip_path}: refusing symbolic link member {name!r}")
    if info.file_size > max_member_bytes:
        raise BundleError(
            f"{zip_path}: member {name!r} is {info.file_size} bytes, "
            f"more than the {max_member_bytes} allowed"
        )


@dataclass(frozen=True)
class Bundle:
    """A bundle whose every file has just been checked against its manifest.

    ``model`` is its Keras model once ``ml.bundle.keras_io`` has loaded it (the web process never
    does); ``sha256`` is the manifest file's hash, which covers every file's, so it names the bundle.
    """

    path: Path
    manifest: dict[str, Any]
    # Optional files that are missing or do not match their hash: never to be used.
    unusable: dict[str, str]
    sha256: str
    model: Any = None

    def with_model(self, model: Any, path: Path | None = None) -> Bundle:
        return replace(self, model=model, path=path or self.path)

    def file(self, name: str) -> Path | None:
        """The path of a file the manifest lists and that checked out, or None."""
        if name not in self.manifest["files"] or name in self.unusable:
            return None
        return self.path / name


@contextmanager
def open_bundle(path: str | Path) -> Iterator[Bundle]:
    """Verify a bundle folder, or unpack and verify a bundle ``.zip`` for the duration of the block."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="skinsight-bundle-") as scratch:
            unpacked = unpack_bundle(path, Path(scratch) / "bundle")
            yield _opened(unpacked)
        return
    yield _opened(path)


def _opened(bundle_dir: Path) -> Bundle:
    manifest = read_manifest(bundle_dir, verify=False)
    unusable = verify_files(bundle_dir, manifest["files"])
    return Bundle(bundle_dir, manifest, unusable, manifest_sha256(bundle_dir))
