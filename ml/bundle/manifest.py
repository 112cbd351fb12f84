"""A bundle's manifest: its file names, and writing, reading and verifying it.

Pure standard library on purpose: the web process imports this module to check bundles
and must not pull in TensorFlow.

A bundle is a directory holding ``manifest.json`` plus the files it lists (``model.keras``,
``split.json``, ...). The manifest records the sha256 of every other file, so a bundle whose
files were changed, removed or added is refused before any model file is deserialised.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
# The files a bundle may hold besides the manifest.
MODEL_FILE = "model.keras"
SPLIT_FILE = "split.json"
TRAINING_FILE = "training.json"
METRICS_FILE = "metrics.json"
# The ONNX export of ``model.keras``: optional, because serving falls back to the Keras model when
# it is missing, damaged or failed its check. A bundle is still refused for any other bad file.
ONNX_FILE = "model.onnx"
OPTIONAL_FILES = frozenset({ONNX_FILE})
SCHEMA_VERSION = 1
REQUIRED_KEYS: tuple[str, ...] = (
    "architecture",
    "class_names",
    "input_size",
    "preprocessing",
    "files",
)

CHUNK = 1024 * 1024  # bytes read at a time when hashing or copying


class BundleError(Exception):
    """A model bundle is missing, malformed or does not match its manifest."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_files(bundle_dir: Path) -> list[str]:
    """Relative POSIX names of every regular file below ``bundle_dir`` except the manifest."""
    names = []
    for path in sorted(bundle_dir.rglob("*")):
        if path.is_symlink():
            # A link could point outside the bundle, so its hash would prove nothing.
            raise BundleError(f"bundle {bundle_dir} contains a symbolic link: {path.name}")
        if path.is_file():
            name = path.relative_to(bundle_dir).as_posix()
            if name != MANIFEST_NAME:
                names.append(name)
    return names


def write_manifest(bundle_dir: str | Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Write ``manifest.json`` into ``bundle_dir`` with ``fields`` plus hashes of every file.

    ``schema_version``, ``created_at`` and ``files`` are always computed here, overriding any
    value passed in ``fields``, so a manifest can never claim hashes it did not check.
    """
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle directory does not exist: {bundle_dir}")
    manifest: dict[str, Any] = dict(fields)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
    manifest["files"] = {name: file_sha256(bundle_dir / name) for name in _bundle_files(bundle_dir)}
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
    (bundle_dir / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
    return manifest


def manifest_sha256(bundle_dir: str | Path) -> str:
    """Hash of the manifest file: it covers every file hash, so it identifies the whole bundle."""
    return file_sha256(Path(bundle_dir) / MANIFEST_NAME)


def read_manifest(bundle_dir: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Parse and validate ``manifest.json``; with ``verify`` also check every file's sha256."""
    bundle_dir = Path(bundle_dir)
    manifest_path = bundle_dir / MANIFEST_NAME
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle directory does not exist: {bundle_dir}")
    if not manifest_path.is_file():
        raise BundleError(f"bundle {bundle_dir} has no {MANIFEST_NAME}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        kind = type(manifest).__name__
        raise BundleError(f"{manifest_path} must hold a JSON object, found {kind}")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path}: unsupported schema_version {version!r} (expected {SCHEMA_VERSION})"
        )
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path} is missing required key(s): {', '.join(missing)}")
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{manifest_path}: 'files' must be a non-empty object of name -> sha256")
    class_names = manifest["class_names"]
    if not isinstance(class_names, list) or not all(isinstance(c, str) for c in class_names):
        raise BundleError(f"{manifest_path}: 'class_names' must be a list of strings")
    if verify:
        verify_files(bundle_dir, files)
    return manifest


def verify_files(bundle_dir: Path, files: dict[str, Any]) -> dict[str, str]:
    """Check every listed file's sha256; raise ``BundleError`` for a required file that is missing
    or changed, and return ``{name: problem}`` for optional files (``OPTIONAL_FILES``) that are."""
    unusable: dict[str, str] = {}
    for name, expected in sorted(files.items()):
        if not is_safe_relative(name):
            raise BundleError(f"bundle {bundle_dir}: manifest lists an unsafe path {name!r}")
        path = bundle_dir / name
        problem = None
        if not path.is_file() or path.is_symlink():
            problem = f"file {name} listed in the manifest is missing"
        else:
            actual = file_sha256(path)
            if actual != expected:
                problem = f"sha256 mismatch for {name}: manifest says {expected}, file has {actual}"
        if problem is None:
            continue
        if name not in OPTIONAL_FILES:
            raise BundleError(f"bundle {bundle_dir}: {problem}")
        unusable[name] = problem
    unlisted = [name for name in _bundle_files(bundle_dir) if name not in files]
    if unlisted:
        raise BundleError(
            f"bundle {bundle_dir}: file(s) not listed in the manifest: {', '.join(unlisted)}"
        )
    return unusable


def is_safe_relative(name: str) -> bool:
    pure = PurePosixPath(name)
    return (
        bool(name)
        and "\\" not in name
        and not pure.is_absolute()
        and ".." not in pure.parts
        and ":" not in pure.parts[0]
    )
