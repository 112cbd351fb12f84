"""Patients see the referral decision first, in plain language; the model card shows the rule."""

import pytest
from django.urls import reverse

from ml.referral import ReferralRule
from tests.factories import ModelVersionFactory
from tests.webapp.test_lesions import BENIGN, WORSE, classify
from webapp.cases.models import Prediction
from webapp.cases.serializers import case_state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("decision", "reasons", "says"),
    [
        ("refer", ["malignant"], "checked by a clinician soon"),
        ("refer", ["low_confidence"], "not sure what it is"),
        ("refer", ["no_rule"], "no validated rule"),
        ("routine", [], "nothing that calls for a referral"),
        ("", [], "before referral decisions were recorded"),
    ],
)
def test_every_decision_has_plain_advice(make_case, patient, decision, reasons, says):
    case = make_case(patient)
    classify(case, WORSE if decision == "refer" else BENIGN)
    Prediction.objects.filter(case=case).update(
        decision=decision, decision_reasons=reasons, malignant_probability=0.7
    )
    case.refresh_from_db()
    state = case_state(case)["prediction"]
    assert says in state["advice"]
    assert state["decision"] == decision
    if "malignant" in reasons:
        assert "70% chance" in state["advice"]


def test_the_model_card_states_the_referral_rule(login, patient):
    rule = ReferralRule(
        malignant_threshold=0.18,
        validation={
            "count": 900,
            "melanomas": 100,
            "melanoma_sensitivity": 0.95,
            "referral_rate": 0.41,
        },
    )
    ModelVersionFactory(
        name="with-rule",
        architecture="mobilenet_v2",
        status="active",
        manifest={"class_names": list(BENIGN), "decision_thresholds": rule.to_manifest()},
    )
    page = login(patient).get(reverse("modelops:card")).content.decode()
    assert "When it sends you to a clinician" in page
    assert "<strong>18%</strong>" in page and "95% of the melanomas" in page
