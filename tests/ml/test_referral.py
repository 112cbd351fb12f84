"""The referral rule: chosen on validation for melanoma sensitivity, recorded in the manifest, applied per photo."""

import numpy as np
import pytest

from ml.classes import CLASSES
from ml.referral import (
    LOW_CONFIDENCE,
    MALIGNANT,
    NO_RULE,
    ReferralRule,
    ReferralRuleError,
    choose_referral_rule,
    decide,
    referral_metrics,
)

MEL, NV, BCC = CLASSES.index("mel"), CLASSES.index("nv"), CLASSES.index("bcc")


def synthetic_validation(seed: int = 0, n: int = 2000):
    """Labels and calibrated-looking probabilities where melanomas score higher but overlap nevi."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(CLASSES), size=n, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    logits = rng.normal(0, 1, size=(n, len(CLASSES)))
    logits[np.arange(n), y] += 1.6  # right more often than not, far from always
    logits[:, NV] += 0.8  # the majority class pulls every photo towards nv, as HAM10000 does
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_the_chosen_threshold_reaches_the_target_plus_margin_on_validation():
    y, probs = synthetic_validation()
    argmax_sensitivity = float(np.mean(probs[y == MEL].argmax(axis=1) == MEL))
    rule = choose_referral_rule(y, probs, CLASSES, target=0.90, margin=0.05)
    found = referral_metrics(y, probs, CLASSES, rule)
    assert found["melanoma_sensitivity"] >= 0.95 > argmax_sensitivity
    assert rule.validation == found
    # The highest such threshold: a hair higher misses the target.
    stricter = ReferralRule(rule.malignant_threshold + 1e-9, min_confidence=0.0)
    assert referral_metrics(y, probs, CLASSES, stricter)["melanoma_sensitivity"] < 0.95


def test_on_new_data_the_margin_absorbs_a_modest_drop():
    y, probs = synthetic_validation(seed=0)
    rule = choose_referral_rule(y, probs, CLASSES)
    y_new, probs_new = synthetic_validation(seed=1)
    assert referral_metrics(y_new, probs_new, CLASSES, rule)["melanoma_sensitivity"] >= 0.90


def test_no_melanoma_in_validation_means_no_rule():
    y, probs = synthetic_validation()
    with pytest.raises(ReferralRuleError, match="no melanoma"):
        choose_referral_rule(np.where(y == MEL, NV, y), probs, CLASSES)


def test_the_rule_round_trips_through_the_manifest_and_bad_ones_are_refused():
    y, probs = synthetic_validation()
    rule = choose_referral_rule(y, probs, CLASSES)
    assert ReferralRule.from_manifest(rule.to_manifest()) == rule
    assert ReferralRule.from_manifest(None) is None and ReferralRule.from_manifest({}) is None
    with pytest.raises(ReferralRuleError, match="version"):
        ReferralRule.from_manifest({"version": 99, "refer": {"malignant_threshold": 0.2}})
    with pytest.raises(ReferralRuleError, match=r"\[0, 1\]"):
        ReferralRule.from_manifest({"version": 1, "refer": {"malignant_threshold": 3}})


def probabilities(**given):
    rest = (1.0 - sum(given.values())) / (len(CLASSES) - len(given))
    return {name: given.get(name, rest) for name in CLASSES}


def test_each_photo_gets_its_decision_and_reasons():
    rule = ReferralRule(malignant_threshold=0.25, min_confidence=0.5)
    calm = decide(probabilities(nv=0.88), rule)
    assert not calm.refer and calm.reasons == ()
    # nv is the top class here, yet a 30% chance of something malignant is referred.
    worrying = decide(probabilities(nv=0.60, mel=0.20, bcc=0.10), rule)
    assert worrying.refer and worrying.reasons == (MALIGNANT,)
    assert worrying.malignant_probability == pytest.approx(
        0.30 + probabilities(nv=0.6, mel=0.2, bcc=0.1)["akiec"]
    )
    unsure = decide(probabilities(bkl=0.40, df=0.35), rule)
    assert unsure.refer and LOW_CONFIDENCE in unsure.reasons
    assert decide(probabilities(nv=0.95), None).reasons == (NO_RULE,)


def _off_domain(seed: int = 3):
    """Photos from elsewhere: the same classes, ranked worse (melanomas score lower)."""
    y, probs = synthetic_validation(seed=seed, n=800)
    logits = np.log(probs)
    logits[y == MEL, MEL] -= 1.2
    shifted = np.exp(logits)
    return y, shifted / shifted.sum(axis=1, keepdims=True)


def test_the_threshold_chosen_with_external_photos_holds_there_too():
    y, probs = synthetic_validation()
    y_ext, probs_ext = _off_domain()
    alone = choose_referral_rule(y, probs, CLASSES)
    assert referral_metrics(y_ext, probs_ext, CLASSES, alone)["melanoma_sensitivity"] < 0.90
    both = choose_referral_rule(y, probs, CLASSES, external=(y_ext, probs_ext))
    assert both.malignant_threshold < alone.malignant_threshold
    assert both.external == referral_metrics(y_ext, probs_ext, CLASSES, both)
    assert both.external["melanoma_sensitivity"] >= 0.95
    assert both.validation["melanoma_sensitivity"] >= 0.95
    # The price is paid on both sets: more benign photos referred than with validation alone.
    assert both.validation["benign_referral_rate"] > alone.validation["benign_referral_rate"]
    assert ReferralRule.from_manifest(both.to_manifest()) == both
    # External photos that rank melanomas better than validation leave the threshold alone.
    easy = choose_referral_rule(y, probs, CLASSES, external=synthetic_validation(seed=4, n=800))
    assert easy.malignant_threshold <= alone.malignant_threshold


def test_the_trade_off_curve_passes_through_the_chosen_threshold():
    from ml.referral import referral_tradeoff

    y, probs = synthetic_validation()
    rule = choose_referral_rule(y, probs, CLASSES)
    curve = referral_tradeoff(y, probs, CLASSES, rule)
    sensitivities = [row["melanoma_sensitivity"] for row in curve]
    # Raising the threshold never refers more melanomas.
    assert sensitivities == sorted(sensitivities, reverse=True)
    chosen = next(row for row in curve if row["threshold"] == rule.malignant_threshold)
    assert chosen["melanoma_sensitivity"] == rule.validation["melanoma_sensitivity"]
