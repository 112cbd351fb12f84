import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from ml.architecture_defaults import ARCHITECTURE_NAMES
from ml.architectures import (
    ARCHITECTURES,
    build_basic_cnn,
    build_mobilenet_v2,
    freeze_backbone,
    get_backbone,
    unfreeze_top_layers,
)

SIZE = 32
ROOT = Path(__file__).resolve().parents[2]


def _pixels(count: int = 3) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    model = ARCHITECTURES[name].build(7, SIZE, weights=None)
    assert model.input_shape == (None, SIZE, SIZE, 3)
    assert model.output_shape == (None, 7)
    expected = np.asarray(model(_pixels(), training=False))
    assert np.allclose(expected.sum(axis=1), 1.0, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(restored(_pixels(), training=False)), expected, atol=1e-6)


def test_round_trip_in_fresh_process(tmp_path: Path) -> None:
    model = build_basic_cnn(7, SIZE)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", _pixels())
    np.save(tmp_path / "expected.npy", np.asarray(model(_pixels(), training=False)))
    code = (
        "import sys, numpy as np, keras; d = sys.argv[1]; "
        "m = keras.saving.load_model(d + '/model.keras', safe_mode=True); "
        "np.save(d + '/actual.npy', np.asarray(m(np.load(d + '/x.npy'), training=False)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=tmp_path,  # not the repo root: loading must not need ml/ importable
        capture_output=True,
        text=True,
        check=False,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "actual.npy"), np.load(tmp_path / "expected.npy"), atol=1e-6
    )


def test_basic_cnn_matches_the_paper() -> None:
    model = build_basic_cnn(7, 64)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [256, 128, 64]
    assert all(c.kernel_size == (3, 3) for c in convs)
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.3, 0.3, 0.3]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [32, 7]
    assert ARCHITECTURES["basic_cnn"].defaults.batch_size == 16
    assert ARCHITECTURES["basic_cnn"].defaults.optimizer == "sgd"


def test_freeze_then_fine_tune_keeps_batch_norm_frozen() -> None:
    model = build_mobilenet_v2(7, SIZE, weights=None)
    freeze_backbone(model)
    backbone = get_backbone(model)
    assert backbone is not None
    assert not backbone.trainable_weights
    assert len(model.trainable_weights) == 4  # head conv + dense, kernels and biases
    unfreeze_top_layers(model, 20)
    trainable = [layer for layer in backbone.layers if layer.trainable and layer.weights]
    assert trainable
    assert all(layer in backbone.layers[-20:] for layer in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    with pytest.raises(ValueError, match="no pretrained backbone"):
        freeze_backbone(build_basic_cnn(7, SIZE))


def test_every_registered_architecture_has_a_builder() -> None:
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    assert all(spec.defaults.name == name for name, spec in ARCHITECTURES.items())
