import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_missing_dataset_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml", "train", "--data", str(tmp_path / "missing"),
         "--out", str(tmp_path / "run"), "--image-size", "32"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: dataset folder not found: {tmp_path / 'missing'}" in result.stderr


def test_bad_bundle_and_missing_weights_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["inspect", str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    from ml import pretrained

    monkeypatch.setattr(pretrained, "_download", lambda *_: (_ for _ in ()).throw(OSError("x")))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--architecture", "densenet169", "--weights-dir", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "predict", "import", "inspect"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--limit-per-class" in capsys.readouterr().out


def test_inspect_predict_evaluate(
    trained_run: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(trained_run)]) == 0
    out = capsys.readouterr().out
    assert "architecture: basic_cnn" in out
    assert "hashes: ok" in out
    image = next(tiny_dataset.rglob("*.jpg"))
    assert main(["predict", str(trained_run), str(image), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0)
    assert main(["evaluate", str(trained_run), "--data", str(tiny_dataset),
                 "--out", str(tmp_path / "rep")]) == 0  # fmt: skip
    assert "recorded test split" in capsys.readouterr().out
    assert main(["predict", str(trained_run), str(tmp_path / "nope.jpg")]) == 2


def test_cli_train_end_to_end(tiny_dataset: Path, tmp_path: Path) -> None:
    code = main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"),
                 "--architecture", "basic_cnn", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
                 "--limit-per-class", "4", "--schedule", "cosine", "--max-minutes", "30",
                 "--label-smoothing", "0.1", "--weight-decay", "0.01", "--colour-jitter", "0.2",
                 "--quiet"])  # fmt: skip
    assert code == 0
    assert main(["inspect", str(tmp_path / "run" / "bundle")]) == 0
    training = json.loads((tmp_path / "run" / "bundle" / "training.json").read_text())
    assert training["config"]["schedule"] == "cosine"
    assert training["config"]["max_minutes"] == 30
    assert training["stopped_by_time_budget"] is False
    regularisers = {
        k: training["config"][k] for k in ("label_smoothing", "weight_decay", "colour_jitter")
    }
    assert regularisers == {"label_smoothing": 0.1, "weight_decay": 0.01, "colour_jitter": 0.2}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--schedule", "step", "invalid choice: 'step'"),
        ("--max-minutes", "0", "must be more than 0 minutes"),
        ("--max-minutes", "an hour", "not a number of minutes"),
        ("--label-smoothing", "1", "must be at least 0 and below 1"),
        ("--colour-jitter", "-0.2", "must be at least 0 and below 1"),
        ("--weight-decay", "-0.01", "must not be negative"),
        ("--weight-decay", "lots", "not a number"),
        ("--weight-decay", "inf", "not a number"),
    ],
)
def test_bad_training_options_are_usage_errors(
    tiny_dataset: Path, capsys, option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tiny_dataset), option, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
