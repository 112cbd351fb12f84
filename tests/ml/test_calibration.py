import numpy as np
import pytest

from ml.calibration import apply_temperature, fit_temperature
from ml.metrics import expected_calibration_error


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def nll(probs, y):
    return -np.log(probs[np.arange(len(y)), y]).mean()


@pytest.fixture(scope="module")
def calibrated():
    """Logits whose softmax is the true label distribution, and labels drawn from it."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5000, 7)) * 1.5
    probs = softmax(logits)
    y = (rng.random(len(probs))[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return logits, y


def as_log_probs(logits):
    # What the training code passes: log of the model's softmax output.
    return np.log(np.clip(softmax(logits), 1e-12, 1))


def test_overconfident_model_gets_temperature_above_one(calibrated):
    logits, y = calibrated
    overconfident = as_log_probs(3.0 * logits)  # logits three times too sharp

    t = fit_temperature(overconfident, y)

    assert t > 1
    assert t == pytest.approx(3.0, rel=0.15)
    before = softmax(overconfident)
    after = apply_temperature(overconfident, t)
    assert nll(after, y) < nll(before, y)
    assert expected_calibration_error(y, after) < expected_calibration_error(y, before) / 2
    # Dividing by T never changes the argmax, so accuracy is untouched.
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))


def test_underconfident_model_gets_temperature_below_one(calibrated):
    logits, y = calibrated
    assert fit_temperature(as_log_probs(0.5 * logits), y) == pytest.approx(0.5, rel=0.15)


def test_well_calibrated_model_keeps_temperature_near_one(calibrated):
    logits, y = calibrated
    assert fit_temperature(as_log_probs(logits), y) == pytest.approx(1.0, abs=0.1)


def test_fitted_temperature_minimises_nll(calibrated):
    logits, y = calibrated
    log_probs = as_log_probs(2.0 * logits)
    t = fit_temperature(log_probs, y)
    best = nll(apply_temperature(log_probs, t), y)
    for nearby in (t * 0.9, t * 1.1):
        assert best <= nll(apply_temperature(log_probs, nearby), y)


def test_temperature_stays_within_bounds():
    # Every prediction right: the NLL keeps falling as T -> 0, so the lower bound stops it.
    log_probs = np.log(np.array([[0.6, 0.4], [0.3, 0.7]]))
    t = fit_temperature(log_probs, [0, 1])
    assert 0.05 <= t < 0.06


def test_temperature_one_returns_the_original_probabilities():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(20, 7)))
    np.testing.assert_allclose(apply_temperature(np.log(probs), 1.0), probs, rtol=1e-10)


def test_apply_temperature_is_stable_and_normalised():
    log_probs = np.array([[0.0, -1000.0, -2000.0], [-5.0, -5.0, -5.0]])
    probs = apply_temperature(log_probs, 0.05)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], 1 / 3)
    # A single row works too.
    np.testing.assert_allclose(apply_temperature(np.log([0.2, 0.8]), 1.0), [0.2, 0.8])


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.zeros((2, 3)), temperature)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_temperature(np.array([[0.0, -np.inf]]), [0])
    with pytest.raises(ValueError, match="one label per row"):
        fit_temperature(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="outside"):
        fit_temperature(np.zeros((2, 2)), [0, 2])
