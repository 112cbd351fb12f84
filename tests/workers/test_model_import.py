"""An admin uploads a model on the Models page; the training worker's service checks it as the command
line does, judges it and registers it, or refuses it with the reason. Uploads never stay in the bucket."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ml.bundle import pack_bundle, write_manifest
from webapp.modelops.models import ImportStatus, ModelImport, ModelStatus, ModelVersion
from workers import imports

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KERAS2_WRITER = Path(__file__).resolve().parents[1] / "ml" / "keras2_writer.py"


def _zip(bundle: Path, tmp_path: Path) -> bytes:
    target = tmp_path / "bundle.zip"
    pack_bundle(bundle, target)
    return target.read_bytes()


def _post(client, admin, **fields):
    client.force_login(admin)
    files = {
        role: SimpleUploadedFile(name, data) for role, (name, data) in fields.pop("files").items()
    }
    response = client.post(
        reverse("modelops:import-new"),
        {"architecture": "basic_cnn", "input_scale": "0-255", **fields, **files},
    )
    return response


def _import(client, admin, **fields) -> ModelImport:
    response = _post(client, admin, **fields)
    assert response.status_code == 302, response.content.decode()[-2000:]
    record = ModelImport.objects.get()
    imports.import_upload(import_id=record.pk)
    record.refresh_from_db()
    return record


def test_a_bundle_zip_is_checked_and_registered_as_a_candidate(
    client, admin, tiny_bundle, tmp_path, bucket_keys
):
    record = _import(
        client, admin, kind="bundle", name="uploaded-tiny",
        files={"bundle": ("tiny.zip", _zip(tiny_bundle, tmp_path))},
    )  # fmt: skip
    assert record.status == ImportStatus.SUCCEEDED, record.status_reason
    version = ModelVersion.objects.get(name="uploaded-tiny")
    assert record.model_version == version
    assert version.status == ModelStatus.CANDIDATE and version.created_by == admin
    assert not bucket_keys(f"imports/{record.public_id}/")
    page = client.get(reverse("modelops:import", args=[record.public_id])).content.decode()
    assert "uploaded-tiny" in page


def test_a_keras_file_and_the_papers_json_and_weights_are_converted(
    client, admin, tiny_bundle, tmp_path
):
    record = _import(
        client, admin, kind="model_file",
        files={"model": ("model.keras", (tiny_bundle / "model.keras").read_bytes())},
    )  # fmt: skip
    assert record.status == ImportStatus.SUCCEEDED, record.status_reason

    subprocess.run(
        [sys.executable, str(KERAS2_WRITER), str(tmp_path / "k2")], check=True, timeout=300
    )
    ModelImport.objects.all().delete()
    record = _import(
        client, admin, kind="json_weights", input_scale="0-1", architecture="paper_cnn",
        files={
            "json": ("model.json", (tmp_path / "k2" / "paper_cnn.json").read_bytes()),
            "weights": ("model.h5", (tmp_path / "k2" / "paper_cnn_weights.h5").read_bytes()),
        },
    )  # fmt: skip
    assert record.status == ImportStatus.SUCCEEDED, record.status_reason
    assert record.model_version.manifest["input_size"] == 32


def _altered_bundle(tiny_bundle: Path, tmp_path: Path, change) -> bytes:
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "altered"))
    manifest = json.loads((copy / "manifest.json").read_text())
    change(copy, manifest)
    return _zip(copy, tmp_path)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d, m: write_manifest(d, {**m, "class_names": list(reversed(m["class_names"]))}),
            "SkinSight serves akiec, bcc, bkl, df, mel, nv, vasc in that order",
        ),
        (
            lambda d, m: write_manifest(d, {**m, "input_size": 64}),
            "model input is 32x32, manifest says 64x64",
        ),
    ],
    ids=["class list", "input size"],
)
def test_a_bundle_with_the_wrong_classes_or_input_size_is_refused(
    client, admin, tiny_bundle, tmp_path, change, reason, bucket_keys
):
    data = _altered_bundle(tiny_bundle, tmp_path, change)
    record = _import(client, admin, kind="bundle", files={"bundle": ("b.zip", data)})
    assert record.status == ImportStatus.FAILED
    assert reason in record.status_reason
    assert not ModelVersion.objects.exists()
    assert not bucket_keys(f"imports/{record.public_id}/")


def test_a_bundle_with_a_wrong_hash_is_refused(client, admin, tiny_bundle, tmp_path):
    source = tmp_path / "good.zip"
    pack_bundle(tiny_bundle, source)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"x" if item.filename == "training.json" else data)
    record = _import(
        client, admin, kind="bundle", files={"bundle": ("t.zip", tampered.read_bytes())}
    )
    assert record.status == ImportStatus.FAILED
    assert "sha256 mismatch for training.json" in record.status_reason
    assert not ModelVersion.objects.exists()


def test_wrong_or_missing_files_are_refused_before_anything_is_stored(client, admin, bucket_keys):
    before = bucket_keys("imports/")
    response = _post(client, admin, kind="bundle", files={"bundle": ("model.exe", b"MZ")})
    assert response.status_code == 400
    assert "must end in .zip" in response.content.decode()
    response = _post(client, admin, kind="json_weights", files={"json": ("m.json", b"{}")})
    assert "Missing file(s) for this kind of import: weights" in response.content.decode()
    assert not ModelImport.objects.exists()
    assert bucket_keys("imports/") == before
