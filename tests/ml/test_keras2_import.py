"""Importing model files written by Keras 2 (tf_keras), the format of the paper's Flask app."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.bundle import BundleError
from ml.bundle.keras_io import import_model_files, load_bundle
from ml.legacy_keras import keras2_config

WRITER = Path(__file__).with_name("keras2_writer.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None,
    reason="tf_keras (Keras 2) is not installed; `make install` adds it",
)


@pytest.fixture(scope="module")
def keras2_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keras2")
    subprocess.run([sys.executable, str(WRITER), str(out)], check=True, timeout=300)
    return out


def _outputs(bundle: Path, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(load_bundle(bundle).model.predict(pixels, verbose=0))


def _source_files(folder: Path, name: str, form: str) -> dict[str, Path]:
    if form == "json+weights":
        return {"json_path": folder / f"{name}.json", "weights_path": folder / f"{name}_weights.h5"}
    return {"model_path": folder / f"{name}.h5"}


@pytest.mark.parametrize("form", ["json+weights", "h5-model"])
@pytest.mark.parametrize(("name", "scale"), [("paper_cnn", "0-1"), ("paper_mobilenet", "-1-1")])
def test_keras2_import_gives_keras2_outputs(
    keras2_files: Path, tmp_path: Path, name: str, scale: str, form: str
) -> None:
    bundle = import_model_files(
        tmp_path / "bundle",
        architecture=name,
        input_scale=scale,
        **_source_files(keras2_files, name, form),
    )
    reference = np.load(keras2_files / "reference.npz")
    np.testing.assert_allclose(_outputs(bundle, reference["pixels"]), reference[name], atol=1e-5)
    assert load_bundle(bundle).manifest["architecture"] == name


JUNK = "junk.h5"  # written by the test: bytes that are not HDF5


@pytest.mark.parametrize(
    ("json_name", "weights_name", "message"),
    [
        # Loading a Lambda layer would run Python code stored in the file.
        ("with_lambda.json", "with_lambda_weights.h5", "Lambda"),
        ("paper_cnn.json", "paper_mobilenet_weights.h5", "cannot load"),
        ("paper_cnn.json", JUNK, "HDF5"),
        # The newer '.weights.h5' layout: the message says what to give instead.
        ("paper_cnn.json", "paper_cnn.weights.h5", r"no layer_names attribute.*--model"),
    ],
    ids=["lambda", "weights-of-another-model", "not-hdf5", "newer-weights-layout"],
)
def test_bad_pairs_are_refused_and_nothing_is_written(
    keras2_files: Path, tmp_path: Path, json_name: str, weights_name: str, message: str
) -> None:
    (tmp_path / JUNK).write_bytes(b"not an HDF5 file")
    folder = tmp_path if weights_name == JUNK else keras2_files
    out = tmp_path / "bundle"
    with pytest.raises(BundleError, match=message):
        import_model_files(
            out,
            architecture="x",
            json_path=keras2_files / json_name,
            weights_path=folder / weights_name,
        )
    assert not out.exists()


def test_keras2_config_repairs_only_what_keras3_rejects() -> None:
    config = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "input_layers": [["input_1", 0, 0]],
            "layers": [
                {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": []},
                {
                    "class_name": "Functional",
                    "name": "backbone",
                    "inbound_nodes": [[["input_1", 0, 0, {}]]],
                },
                {
                    "module": "keras.layers",
                    "registered_name": None,
                    "class_name": "DepthwiseConv2D",
                    "name": "dw",
                    "config": {"groups": 1, "kernel_size": [3, 3]},
                    "inbound_nodes": [[["backbone", 1, 0, {}]]],
                },
            ],
        },
    }
    repaired = keras2_config(config)
    layers = repaired["config"]["layers"]
    assert "module" not in layers[2] and "registered_name" not in layers[2]
    assert layers[2]["config"] == {"kernel_size": [3, 3]}
    # The nested model's call is renumbered; a call of a plain layer is not.
    assert layers[2]["inbound_nodes"] == [[["backbone", 0, 0, {}]]]
    assert layers[1]["inbound_nodes"] == [[["input_1", 0, 0, {}]]]
    # The input is not modified in place.
    assert config["config"]["layers"][2]["inbound_nodes"] == [[["backbone", 1, 0, {}]]]


def test_h5_model_with_unreadable_config_is_refused(keras2_files: Path, tmp_path: Path) -> None:
    import shutil

    import h5py

    broken = tmp_path / "broken.h5"
    shutil.copyfile(keras2_files / "paper_cnn.h5", broken)
    with h5py.File(broken, "r+") as handle:
        handle.attrs["model_config"] = "{not json"
    with pytest.raises(BundleError, match="cannot load model file"):
        import_model_files(tmp_path / "bundle", architecture="x", model_path=broken)
    assert not (tmp_path / "bundle").exists()
