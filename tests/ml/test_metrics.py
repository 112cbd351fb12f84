import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.classes import CLASSES
from ml.metrics import classification_metrics, expected_calibration_error, reliability_bins

# A 3-class example small enough to check by hand. Every prediction has confidence 0.8 on the
# predicted class and 0.1 on the two others.
SMALL_CLASSES = ("nv", "mel", "bcc")
SMALL_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
SMALL_PRED = [0, 0, 0, 1, 1, 1, 0, 2, 2, 1]


def one_hotish(pred, n_classes, confidence=0.8):
    """Probabilities with `confidence` on the predicted class, the rest shared evenly."""
    probs = np.full((len(pred), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def random_probs(rng, n, k=7):
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def test_hand_computed_small_example():
    m = classification_metrics(SMALL_TRUE, one_hotish(SMALL_PRED, 3), class_names=SMALL_CLASSES)

    # rows = true nv/mel/bcc, columns = predicted
    assert m["confusion_matrix"] == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(7 / 10)
    # recalls 3/4, 2/3, 2/3
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)

    nv, mel, bcc = (m["per_class"][c] for c in SMALL_CLASSES)
    assert nv == pytest.approx({"precision": 3 / 4, "recall": 3 / 4, "f1": 3 / 4, "support": 4})
    assert mel["precision"] == pytest.approx(2 / 4)
    assert mel["recall"] == pytest.approx(2 / 3)
    assert mel["f1"] == pytest.approx(4 / 7)  # 2PR/(P+R) with P=1/2, R=2/3
    assert bcc == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["macro_f1"] == pytest.approx((3 / 4 + 4 / 7 + 0.8) / 3)

    # mel vs rest: 2 of 3 melanomas found; of 7 non-melanomas, 2 were called mel.
    assert m["melanoma"]["sensitivity"] == pytest.approx(2 / 3)
    assert m["melanoma"]["specificity"] == pytest.approx(5 / 7)

    # All confidences are 0.8 (one bin) and 70% are right.
    assert m["ece"] == pytest.approx(0.1)
    assert m["log_loss"] == pytest.approx(-(7 * math.log(0.8) + 3 * math.log(0.1)) / 10)


def test_result_is_plain_json():
    rng = np.random.default_rng(0)
    probs = random_probs(rng, 50)
    m = classification_metrics(rng.integers(0, 7, 50), probs)
    assert json.loads(json.dumps(m)) == m
    assert list(m["per_class"]) == list(CLASSES)
    assert isinstance(m["n"], int) and isinstance(m["accuracy"], float)
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_roc_auc_matches_sklearn_one_vs_rest():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 300)
    probs = random_probs(rng, 300)
    probs[np.arange(300), y] += 0.5  # some signal, so the AUCs are not all ~0.5
    probs /= probs.sum(axis=1, keepdims=True)

    auc = classification_metrics(y, probs)["roc_auc"]
    expected = [roc_auc_score(y == k, probs[:, k]) for k in range(7)]
    assert [auc[c] for c in CLASSES] == pytest.approx(expected)
    assert auc["macro"] == pytest.approx(np.mean(expected))
    assert auc["macro"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))


def test_roc_auc_is_none_for_absent_or_only_class():
    rng = np.random.default_rng(2)
    y = rng.choice([0, 1, 2, 4, 5, 6], 100)  # no df (3)
    probs = random_probs(rng, 100)
    auc = classification_metrics(y, probs)["roc_auc"]
    assert auc["df"] is None
    defined = [roc_auc_score(y == k, probs[:, k]) for k in (0, 1, 2, 4, 5, 6)]
    assert auc["macro"] == pytest.approx(np.mean(defined))

    only_mel = classification_metrics([4, 4, 4], random_probs(rng, 3))
    assert all(v is None for v in only_mel["roc_auc"].values())


def test_melanoma_metrics_undefined_without_melanoma_cases():
    y = [5, 5, 0, 1]
    m = classification_metrics(y, one_hotish([5, 4, 0, 1], 7))
    assert m["melanoma"]["sensitivity"] is None  # no melanoma in the set
    assert m["melanoma"]["specificity"] == pytest.approx(3 / 4)
    # balanced accuracy averages only the classes that occur (nv, akiec, bcc)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    # macro F1 skips bkl, df and vasc (neither present nor predicted) but keeps mel (F1 0,
    # predicted once wrongly): nv 2/3, mel 0, akiec 1, bcc 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 1 + 1) / 4)


def test_float_labels_with_whole_values_are_accepted():
    probs = one_hotish(SMALL_PRED, 3)
    as_float = classification_metrics(np.array(SMALL_TRUE, dtype=np.float32), probs, SMALL_CLASSES)
    assert as_float == classification_metrics(SMALL_TRUE, probs, SMALL_CLASSES)


def test_ece_zero_when_confidence_matches_accuracy():
    # 4 predictions at confidence 0.75 with 3 right, 2 at confidence 1.0 both right.
    probs = np.array([[0.75, 0.25]] * 4 + [[1.0, 0.0]] * 2)
    y = [0, 0, 0, 1, 0, 0]
    assert expected_calibration_error(y, probs) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_overconfident_model():
    # Always 99% sure, right half the time.
    probs = np.array([[0.99, 0.01]] * 100)
    y = [0, 1] * 50
    assert expected_calibration_error(y, probs) == pytest.approx(0.49)


def test_ece_small_when_labels_are_drawn_from_the_probabilities():
    rng = np.random.default_rng(3)
    probs = random_probs(rng, 20000)
    y = (rng.random(20000)[:, None] > probs.cumsum(axis=1)).sum(axis=1)  # y ~ Categorical(p)
    assert expected_calibration_error(y, probs) < 0.02


def test_reliability_bins():
    probs = np.array([[0.75, 0.25]] * 4 + [[1.0, 0.0]] * 2 + [[0.5, 0.5]])
    y = [0, 0, 0, 1, 0, 0, 1]
    bins = reliability_bins(y, probs, n_bins=4)
    assert [(b["lower"], b["upper"]) for b in bins] == [
        (0, 0.25),
        (0.25, 0.5),
        (0.5, 0.75),
        (0.75, 1),
    ]
    assert [b["count"] for b in bins] == [0, 0, 1, 6]
    assert bins[0]["confidence"] is None and bins[0]["accuracy"] is None
    # ties go to the first class, so the 0.5/0.5 row predicts class 0 and is wrong
    assert bins[2] == pytest.approx(
        {"lower": 0.5, "upper": 0.75, "count": 1, "confidence": 0.5, "accuracy": 0.0}
    )
    assert bins[3]["confidence"] == pytest.approx((4 * 0.75 + 2 * 1.0) / 6)
    assert bins[3]["accuracy"] == pytest.approx(5 / 6)
    assert len(reliability_bins(y, probs)) == 15


@pytest.mark.parametrize(
    ("y", "probs", "message"),
    [
        ([0, 1], np.full((3, 7), 1 / 7), "3 rows"),
        ([0, 1, 2], np.full((3, 5), 1 / 5), "5 columns"),
        ([0, 1, 2], np.full((3, 7), 0.5), "do not sum to 1"),
        ([0, 1, 2], np.full((3, 7), 1 / 7) - 0.2, r"\[0, 1\]"),
        ([0, 1, 7], np.full((3, 7), 1 / 7), "outside 0..6"),
        ([0, -1, 2], np.full((3, 7), 1 / 7), "outside 0..6"),
        ([0, 1.5, 2], np.full((3, 7), 1 / 7), "integer"),
        ([[0], [1], [2]], np.full((3, 7), 1 / 7), "1-D"),
        ([0, 1, 2], np.full(7, 1 / 7), "2-D"),
        ([], np.zeros((0, 7)), "empty"),
        ([0, 1, 2], np.full((3, 7), np.nan), "NaN"),
    ],
)
def test_bad_input_is_rejected(y, probs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, probs)


def test_small_rounding_in_row_sums_is_tolerated():
    probs = np.full((3, 7), 1 / 7, dtype=np.float32) * (1 + 1e-5)
    assert classification_metrics([0, 1, 2], probs)["n"] == 3
