"""bench/gpu, the check a GPU host runs without TensorFlow, run here on the CPU: the inputs it packs,
ONNX Runtime on the export at batch 1 and 8, and MobileNetV2 trained through Keras 3 on torch."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from bench.gpu.prepare import LABELS, even_draw, prepare
from ml.bundle import ONNX_FILE
from tests.processes import ROOT


def test_photos_are_drawn_from_every_class_in_turn():
    drawn = even_draw({"mel": ["m1", "m2", "m3"], "nv": ["n1"], "df": ["d1", "d2"]}, 5)
    assert sorted(dx for _, dx in drawn) == ["df", "df", "mel", "mel", "nv"]
    assert even_draw({"mel": ["m1"]}, 3) == [("m1", "mel")]  # never more than there is


def test_a_bundle_without_an_onnx_export_is_refused(tiny_bundle, training_dataset_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "manifest.json").write_text((tiny_bundle / "manifest.json").read_text())
    with pytest.raises(SystemExit, match="no ONNX export"):
        prepare(bare, training_dataset_dir, tmp_path / "inputs", 10, None)
    assert not (tmp_path / "inputs").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_the_check_serves_the_export_and_trains_mobilenet_without_tensorflow(
    tiny_bundle, training_dataset_dir, tmp_path
):
    inputs = tmp_path / "inputs"
    packed = prepare(tiny_bundle, training_dataset_dir, inputs, 24, None)
    assert packed["mib"] < 60 and (inputs / ONNX_FILE).is_file()
    assert len((inputs / LABELS).read_text().splitlines()) == 1 + 24
    out = tmp_path / "gpu.json"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu", "--inputs", str(inputs), "--epochs", "1",
         "--image-size", "32", "--train-batch", "8", "--repeats", "5", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    result = json.loads(out.read_text())
    assert result["tensorflow_imported"] is False
    onnx = result["onnx"]
    assert onnx["providers"][-1] == "CPUExecutionProvider"
    assert onnx["batch_1"]["images_per_s"] > 0 and onnx["batch_8"]["images_per_s"] > 0
    training = result["training"]
    assert training["backend"] == "torch" and training["device"] == "cpu"
    assert training["architecture"] == "mobilenet_v2" and training["epochs"] == 1
    assert len(training["loss"]) == 1 and math.isfinite(training["loss"][0])
    assert "[gpu] epoch 1/1" in done.stdout
