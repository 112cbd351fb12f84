"""Results by body site, age band and sex, with a planted weak subgroup that must be flagged."""

import numpy as np

from ml.classes import CLASSES
from ml.subgroups import age_band, subgroup_report, subgroup_values

MEL, NV, BKL = CLASSES.index("mel"), CLASSES.index("nv"), CLASSES.index("bkl")


def _planted(seed: int = 0):
    """600 photos over three sites; the model refers 95% of melanomas except on the scalp, where it
    refers a third of them and confuses bkl with nv."""
    rng = np.random.default_rng(seed)
    sites = rng.choice(["back", "trunk", "scalp"], size=600, p=[0.45, 0.35, 0.20])
    y = rng.choice([MEL, NV, BKL], size=600, p=[0.2, 0.6, 0.2])
    predicted = y.copy()
    referred = np.zeros(600, dtype=bool)
    for i in range(600):
        weak = sites[i] == "scalp"
        if y[i] == MEL:
            referred[i] = rng.random() < (0.33 if weak else 0.95)
        if y[i] == BKL and weak:
            predicted[i] = NV
    ages = rng.choice(["35.0", "50.0", "70.0", "", "unknown"], size=600)
    sexes = rng.choice(["female", "male", "unknown"], size=600)
    attributes = [
        {"localization": site, "age": age, "sex": sex}
        for site, age, sex in zip(sites, ages, sexes, strict=True)
    ]
    return attributes, y, predicted, referred


def test_the_planted_weak_subgroup_is_flagged_and_no_other() -> None:
    attributes, y, predicted, referred = _planted()
    report = subgroup_report(attributes, y, predicted, referred, CLASSES)
    flagged = {(f["attribute"], f["value"]) for f in report["flagged"]}
    assert flagged == {("localization", "scalp")}
    reasons = [f["reason"] for f in report["flagged"]]
    assert any("melanomas" in r for r in reasons) and any("balanced accuracy" in r for r in reasons)
    scalp = next(g for g in report["attributes"]["localization"]["groups"] if g["value"] == "scalp")
    assert scalp["melanoma_sensitivity"] < report["whole"]["melanoma_sensitivity"] - 0.10
    # Photos without a recorded age or sex belong to no subgroup of that attribute.
    ages = report["attributes"]["age_band"]
    assert ages["unknown"] == sum(1 for a in attributes if a["age"] in ("", "unknown"))
    assert {g["value"] for g in ages["groups"]} == {"30-44", "45-59", "60-74"}
    assert sum(g["n"] for g in ages["groups"]) + ages["unknown"] == 600


def test_small_subgroups_are_listed_but_never_flagged() -> None:
    attributes, y, predicted, referred = _planted()
    # Only four scalp photos: too few to call a gap, however large.
    scalp = [i for i, a in enumerate(attributes) if a["localization"] == "scalp"]
    keep = np.array([i not in scalp[4:] for i in range(600)])
    report = subgroup_report(
        [a for a, k in zip(attributes, keep, strict=True) if k],
        y[keep],
        predicted[keep],
        referred[keep],
        CLASSES,
    )
    assert report["flagged"] == []
    assert any(g["value"] == "scalp" for g in report["attributes"]["localization"]["groups"])


def test_age_bands_and_unknown_values() -> None:
    assert [age_band(a) for a in ("5", "30", "44.9", "45", "74", "75", "90")] == [
        "under 30", "30-44", "30-44", "45-59", "60-74", "75 and over", "75 and over",
    ]  # fmt: skip
    assert age_band("") is None and age_band("n/a") is None and age_band("-3") is None
    assert subgroup_values({"localization": "Unknown", "sex": " Male "}) == {
        "localization": None,
        "age_band": None,
        "sex": "male",
    }
