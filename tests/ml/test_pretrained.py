from pathlib import Path

import pytest

from ml import pretrained
from ml.pretrained import WEIGHT_FILES, PretrainedWeightsUnavailable, resolve_weights

from .conftest import SHARED

WEIGHTS_DIR = SHARED / "weights"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configured folder, an empty Keras cache and a failing download."""

    def refuse(file_name: str, origin: str) -> str:
        raise OSError(f"no network to fetch {origin}")

    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(pretrained, "_download", refuse)
    return tmp_path


def test_offline_without_weights_explains_the_fix(offline: Path) -> None:
    with pytest.raises(PretrainedWeightsUnavailable) as caught:
        resolve_weights("densenet169", offline / "empty")
    message = str(caught.value)
    assert WEIGHT_FILES["densenet169"] in message
    assert "PRETRAINED_WEIGHTS_DIR" in message
    assert "--no-pretrained" in message
    assert "no network" in message


def test_lookup_order(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = offline / "keras-home" / "models" / WEIGHT_FILES["mobilenet_v2"]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"cache")
    assert resolve_weights("mobilenet_v2") == cached
    configured = offline / "configured" / WEIGHT_FILES["mobilenet_v2"]
    configured.parent.mkdir()
    configured.write_bytes(b"configured")
    monkeypatch.setenv(pretrained.ENV_VAR, str(configured.parent))
    assert resolve_weights("mobilenet_v2") == configured


def test_mobilenet_builds_from_shared_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (WEIGHTS_DIR / WEIGHT_FILES["mobilenet_v2"]).is_file():
        pytest.skip(f"{WEIGHTS_DIR} is absent: ImageNet weights are only beside the checkout")
    from ml.architectures import build_mobilenet_v2, get_backbone

    monkeypatch.setenv(pretrained.ENV_VAR, str(WEIGHTS_DIR))
    with pytest.warns(UserWarning, match="trained at 224px"):
        model = build_mobilenet_v2(7, 32, weights="imagenet")
    backbone = get_backbone(model)
    assert backbone is not None
    first_conv = backbone.get_layer("Conv1").get_weights()[0]
    # Random init would be centred on 0 with tiny spread; ImageNet kernels are not.
    assert float(abs(first_conv).max()) > 0.5
