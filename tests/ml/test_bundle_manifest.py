import json
import stat
import zipfile
from pathlib import Path

import pytest

from ml.bundle import (
    MANIFEST_NAME,
    BundleError,
    file_sha256,
    pack_bundle,
    read_manifest,
    unpack_bundle,
    write_manifest,
)
from ml.bundle.manifest import SCHEMA_VERSION
from tests.processes import modules_loaded

FIELDS = {
    "architecture": "basic_cnn",
    "class_names": ["akiec", "bcc"],
    "input_size": 32,
    "preprocessing": {"input": "0..255"},
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "model.keras").write_bytes(b"weights")
    (directory / "split.json").write_text("{}")
    write_manifest(directory, FIELDS)
    return directory


def test_write_manifest_records_every_file(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["files"] == {
        "model.keras": file_sha256(bundle / "model.keras"),
        "split.json": file_sha256(bundle / "split.json"),
    }
    assert manifest["created_at"].endswith("+00:00")


def test_tampered_file_is_named(bundle: Path) -> None:
    (bundle / "model.keras").write_bytes(b"evil")
    with pytest.raises(BundleError, match=r"sha256 mismatch for model\.keras"):
        read_manifest(bundle)
    # Without verification the metadata is still readable, e.g. for listing.
    assert read_manifest(bundle, verify=False)["architecture"] == "basic_cnn"


def test_missing_file_is_named(bundle: Path) -> None:
    (bundle / "split.json").unlink()
    with pytest.raises(BundleError, match=r"split\.json listed in the manifest is missing"):
        read_manifest(bundle)


def test_extra_file_is_refused(bundle: Path) -> None:
    (bundle / "other.keras").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"not listed in the manifest: other\.keras"):
        read_manifest(bundle)


def test_missing_required_key_and_schema(bundle: Path) -> None:
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    del manifest["input_size"]
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"missing required key.*input_size"):
        read_manifest(bundle)
    manifest["input_size"] = 32
    manifest["schema_version"] = 99
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unsupported schema_version 99"):
        read_manifest(bundle)


def test_pack_unpack_round_trip(bundle: Path, tmp_path: Path) -> None:
    digest = pack_bundle(bundle, tmp_path / "b.zip")
    assert digest == file_sha256(tmp_path / "b.zip")
    unpacked = unpack_bundle(tmp_path / "b.zip", tmp_path / "out")
    assert (unpacked / "model.keras").read_bytes() == b"weights"


@pytest.mark.parametrize("member", ["../escape.txt", "/abs.txt", "a/../../b.txt"])
def test_unpack_refuses_traversal(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(member, "x")
    with pytest.raises(BundleError, match="unsafe member path"):
        unpack_bundle(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_refuses_symlink_and_oversized(bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        info = zipfile.ZipInfo("model.keras")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        unpack_bundle(archive, tmp_path / "out1")
    pack_bundle(bundle, tmp_path / "ok.zip")
    with pytest.raises(BundleError, match="more than the 3 allowed"):
        unpack_bundle(tmp_path / "ok.zip", tmp_path / "out2", max_member_bytes=3)


def test_bundle_package_imports_no_tensorflow() -> None:
    assert modules_loaded("import ml.bundle", ("tensorflow", "keras", "numpy")) == []
