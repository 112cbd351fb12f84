import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from ml.architectures import build_basic_cnn
from ml.bundle import MODEL_FILE, ONNX_FILE, BundleError, pack_bundle, read_manifest
from ml.bundle.keras_io import import_model_files, load_bundle, save_bundle

SIZE = 32


def _save(model: keras.Model, out: Path, **kwargs) -> Path:
    return save_bundle(
        model, out, architecture="basic_cnn", input_size=SIZE, training={"epochs": 0}, **kwargs
    )


def _pixels() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


def test_save_and_load_dir_and_zip(tmp_path: Path) -> None:
    model = build_basic_cnn(7, SIZE)
    bundle = _save(model, tmp_path / "b", split={"test": []}, calibration_temperature=1.5)
    manifest = read_manifest(bundle)
    assert set(manifest["files"]) == {MODEL_FILE, ONNX_FILE, "split.json", "training.json"}
    assert manifest["onnx"]["file"] == ONNX_FILE
    assert manifest["calibration_temperature"] == 1.5
    assert manifest["class_names"][0] == "akiec"
    expected = np.asarray(model(_pixels()))
    loaded = load_bundle(bundle)
    np.testing.assert_allclose(np.asarray(loaded.model(_pixels())), expected, atol=1e-6)
    pack_bundle(bundle, tmp_path / "b.zip")
    from_zip = load_bundle(tmp_path / "b.zip")
    assert from_zip.sha256 == loaded.sha256
    np.testing.assert_allclose(np.asarray(from_zip.model(_pixels())), expected, atol=1e-6)


def test_refuses_overwrite_and_tampering(tmp_path: Path) -> None:
    bundle = _save(build_basic_cnn(7, SIZE), tmp_path / "b")
    with pytest.raises(BundleError, match="refusing to overwrite"):
        _save(build_basic_cnn(7, SIZE), bundle)
    with open(bundle / MODEL_FILE, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match=r"sha256 mismatch for model\.keras"):
        load_bundle(bundle)


def test_manifest_class_count_must_match_model(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="outputs 5 classes but 7 class names"):
        _save(build_basic_cnn(5, SIZE), tmp_path / "b")


def _legacy_h5_weights(model: keras.Model, path: Path) -> None:
    """Write weights the way Keras 2's ``model.save_weights("x.h5")`` did."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


def test_import_json_and_h5_weights(tmp_path: Path) -> None:
    source = build_basic_cnn(7, SIZE)
    (tmp_path / "model.json").write_text(source.to_json())
    _legacy_h5_weights(source, tmp_path / "weights.h5")
    bundle = import_model_files(
        tmp_path / "imported",
        architecture="paper_cnn",
        json_path=tmp_path / "model.json",
        weights_path=tmp_path / "weights.h5",
    )
    loaded = load_bundle(bundle)
    assert loaded.manifest["architecture"] == "paper_cnn"
    np.testing.assert_allclose(
        np.asarray(loaded.model(_pixels())), np.asarray(source(_pixels())), atol=1e-6
    )


def test_import_unit_scaled_keras_file(tmp_path: Path) -> None:
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs))
    source = keras.Model(inputs, outputs)
    source.save(tmp_path / "src.keras")
    bundle = import_model_files(
        tmp_path / "b", architecture="x", model_path=tmp_path / "src.keras", input_scale="0-1"
    )
    loaded = load_bundle(bundle)
    np.testing.assert_allclose(
        np.asarray(loaded.model(_pixels())), np.asarray(source(_pixels() / 255.0)), atol=1e-5
    )
    assert json.loads((bundle / "manifest.json").read_text())["preprocessing"]["normalisation"]


def test_import_wrong_class_count_is_clear(tmp_path: Path) -> None:
    build_basic_cnn(3, SIZE).save(tmp_path / "three.keras")
    with pytest.raises(BundleError, match=r"outputs shape \(None, 3\), expected \(None, 7\)"):
        import_model_files(tmp_path / "b", architecture="x", model_path=tmp_path / "three.keras")
    assert not (tmp_path / "b").exists()
    with pytest.raises(BundleError, match="needs --model FILE, or both --json"):
        import_model_files(tmp_path / "c", architecture="x", json_path=tmp_path / "m.json")
