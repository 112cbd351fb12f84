import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from ml.classes import CLASSES
from ml.metrics import classification_metrics
from ml.reports import render_summary_markdown, write_evaluation_report
from tests.processes import modules_loaded

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Two phases (frozen backbone, then fine-tuning) concatenated, as the training code does.
HISTORY = {
    "loss": [1.6, 1.2, 1.0, 0.8, 0.7],
    "val_loss": [1.5, 1.3, 1.1, 1.0, 0.95],
    "accuracy": [0.45, 0.6, 0.66, 0.72, 0.75],
    "val_accuracy": [0.5, 0.58, 0.63, 0.67, 0.7],
    "learning_rate": [1e-3, 1e-3, 1e-5, 1e-5, 1e-5],
}


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    logits = rng.normal(size=(200, 7))
    logits[np.arange(200), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs, classification_metrics(y, probs)


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 10_000  # a real plot, not an empty canvas
    height, width, _ = imread(path).shape
    assert height > 200 and width > 200


def test_report_writes_every_file(tmp_path, evaluation):
    y, probs, metrics = evaluation
    out = tmp_path / "nested" / "report"  # created on demand
    extra = {"training_time_s": 1234.5, "split": "lesion-grouped 70/15/15", "seed": 42}

    paths = write_evaluation_report(
        out,
        metrics=metrics,
        y_true=y,
        probs=probs,
        history=HISTORY,
        title="EfficientNetB0 test set",
        extra=extra,
    )

    expected = {
        "metrics": "metrics.json",
        "confusion_matrix": "confusion_matrix.png",
        "per_class": "per_class.png",
        "reliability": "reliability.png",
        "curves": "curves.png",
        "summary": "summary.md",
    }
    assert paths == {name: str(out / file) for name, file in expected.items()}
    for name in ("confusion_matrix", "per_class", "reliability", "curves"):
        assert_valid_png(Path(paths[name]))

    saved = json.loads(Path(paths["metrics"]).read_text())
    assert saved == {**metrics, "extra": extra}


def test_summary_contains_the_numbers_and_links(tmp_path, evaluation):
    y, probs, metrics = evaluation
    paths = write_evaluation_report(
        tmp_path,
        metrics=metrics,
        y_true=y,
        probs=probs,
        history=HISTORY,
        title="EfficientNetB0 test set",
        extra={"training_time_s": 1234.5, "split": "lesion-grouped 70/15/15"},
    )
    summary = Path(paths["summary"]).read_text()

    assert summary.startswith("# EfficientNetB0 test set\n")
    assert "| Images evaluated (n) | 200 |" in summary
    assert f"| Accuracy | {metrics['accuracy']:.4f} |" in summary
    assert f"| Balanced accuracy (mean recall) | {metrics['balanced_accuracy']:.4f} |" in summary
    assert f"| Macro F1 | {metrics['macro_f1']:.4f} |" in summary
    assert f"| Melanoma sensitivity | {metrics['melanoma']['sensitivity']:.4f} |" in summary
    assert f"| Melanoma specificity | {metrics['melanoma']['specificity']:.4f} |" in summary
    assert f"{metrics['ece']:.4f}" in summary
    mel = metrics["per_class"]["mel"]
    assert (
        f"| mel | Melanoma | {mel['precision']:.4f} | {mel['recall']:.4f} | {mel['f1']:.4f} "
        f"| {metrics['roc_auc']['mel']:.4f} | {mel['support']} |"
    ) in summary
    assert sum(line.startswith(f"| {c} |") for line in summary.splitlines() for c in CLASSES) == 7
    assert "- **training_time_s**: 1234.5000" in summary
    assert "- **split**: lesion-grouped 70/15/15" in summary
    for image in ("confusion_matrix.png", "per_class.png", "reliability.png", "curves.png"):
        assert f"]({image})" in summary  # relative, so the folder can be moved or served


def test_curves_only_with_history(tmp_path, evaluation):
    y, probs, metrics = evaluation
    write_evaluation_report(tmp_path, metrics=metrics, y_true=y, probs=probs, history=HISTORY)
    assert (tmp_path / "curves.png").exists()

    # Rewriting the same folder without a history must not leave the old curves behind.
    paths = write_evaluation_report(tmp_path, metrics=metrics, y_true=y, probs=probs)
    assert "curves" not in paths
    assert not (tmp_path / "curves.png").exists()
    summary = Path(paths["summary"]).read_text()
    assert "curves.png" not in summary
    assert "# Evaluation report" in summary
    assert "extra" not in json.loads(Path(paths["metrics"]).read_text())


def test_report_for_a_subset_of_classes(tmp_path):
    names = ("nv", "mel", "bcc")
    y = [0, 0, 1, 1, 2, 2]
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.7 + 0.1
    metrics = classification_metrics(y, probs, class_names=names)
    paths = write_evaluation_report(
        tmp_path, metrics=metrics, y_true=y, probs=probs, class_names=names
    )
    assert_valid_png(Path(paths["confusion_matrix"]))
    assert "| Melanoma sensitivity | 1.0000 |" in Path(paths["summary"]).read_text()


def test_report_rejects_mismatched_inputs(tmp_path, evaluation):
    y, probs, metrics = evaluation
    with pytest.raises(ValueError, match="rows"):
        write_evaluation_report(tmp_path, metrics=metrics, y_true=y[:-1], probs=probs)


def test_render_summary_handles_undefined_values():
    metrics = classification_metrics([5, 5], np.eye(7)[[5, 0]])
    text = render_summary_markdown(metrics, title="Tiny", extra=None, images={})
    assert "| Melanoma sensitivity | n/a |" in text
    assert "| Macro ROC AUC (one-vs-rest) | n/a |" in text
    assert "## Figures" not in text


def test_evaluation_modules_need_no_tensorflow_django_or_pyplot():
    # The web image and light CI jobs import these without the ML extras; pyplot would also
    # pick a GUI backend on a desktop.
    banned = ("tensorflow", "keras", "django", "matplotlib.pyplot")
    assert modules_loaded("import ml.metrics, ml.calibration, ml.reports", banned) == []


def test_learning_rate_gets_a_panel_but_no_plot_on_its_own(tmp_path, evaluation):
    from PIL import Image

    y, probs, metrics = evaluation
    without_rate = {k: v for k, v in HISTORY.items() if k != "learning_rate"}
    write_evaluation_report(
        tmp_path / "a", metrics=metrics, y_true=y, probs=probs, history=without_rate
    )
    write_evaluation_report(tmp_path / "b", metrics=metrics, y_true=y, probs=probs, history=HISTORY)
    narrow = Image.open(tmp_path / "a" / "curves.png").size[0]
    wide = Image.open(tmp_path / "b" / "curves.png").size[0]
    assert wide > narrow * 1.3  # a third panel
    paths = write_evaluation_report(
        tmp_path / "c", metrics=metrics, y_true=y, probs=probs, history={"learning_rate": [1e-3]}
    )
    assert "curves" not in paths
