"""A case as a document for another system: SkinSight's own JSON, and a FHIR R4 Bundle.

The FHIR Bundle (type "collection") holds a DiagnosticReport with its Observations (the model's
classification with every class probability, the refer decision and the malignant probability; one per
clinician review) and its Media (the photo, and the heat map when there is one), plus the Patient they
refer to. It is built from fhirclient's FHIR 4.0.1 models, which check types, cardinality and required
elements when it is serialised. Model results stay "preliminary" until a clinician has reviewed the case.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone
from fhirclient.models.annotation import Annotation
from fhirclient.models.attachment import Attachment
from fhirclient.models.bundle import Bundle, BundleEntry
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.coding import Coding
from fhirclient.models.diagnosticreport import DiagnosticReport, DiagnosticReportMedia
from fhirclient.models.fhirdatetime import FHIRDateTime
from fhirclient.models.fhirinstant import FHIRInstant
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.identifier import Identifier
from fhirclient.models.media import Media
from fhirclient.models.observation import Observation, ObservationComponent
from fhirclient.models.patient import Patient
from fhirclient.models.quantity import Quantity

from ml.classes import CLASS_NAMES, MALIGNANT_CLASSES
from ml.heatmaps import WHOLE_PHOTO
from ml.referral import malignant_probability
from webapp.cases.models import Case, CaseStatus, HeatMapStatus, Review
from webapp.cases.serializers import (
    CaseSerializer,
    ReviewSerializer,
    case_heatmap_url,
    case_image_url,
    referral_advice,
)

EXPORT_FORMAT = "skinsight-case"
EXPORT_VERSION = 1

# SkinSight's own code systems (URNs: they name, they do not resolve).
DIAGNOSIS_SYSTEM = "urn:skinsight:code:ham10000-diagnosis"
OBSERVATION_SYSTEM = "urn:skinsight:code:observation"
PATIENT_SYSTEM = "urn:skinsight:id:patient-username"
CASE_SYSTEM = "urn:skinsight:id:case"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
# Every id in a bundle is derived from the case's, so exporting a case twice gives the same ids.
_IDS = uuid.UUID("3f0c1a52-5d0e-4b8e-9a53-2b7f7b1f2d61")


# --- SkinSight JSON ----------------------------------------------------------------------------------


def case_json(case: Case, reviews: list[Review]) -> dict:
    """Everything the portal holds about one case, as its pages and API show it."""
    state = CaseSerializer(case, context={}).data
    prediction = getattr(case, "prediction", None)
    heatmap = getattr(prediction, "heatmap", None) if prediction else None
    if heatmap is not None and heatmap.status == HeatMapStatus.DONE:
        state["prediction"]["heatmap"]["grid"] = heatmap.grid
        # Where on the photo the grid lies (older heat maps, made before crops, cover it all).
        state["prediction"]["heatmap"]["region"] = heatmap.region or list(WHOLE_PHOTO)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "patient": case.lesion.patient.username,
        "uploaded_by": case.uploaded_by.username,
        "lesion": {
            "id": str(case.lesion.public_id),
            "body_site": case.lesion.body_site,
            "label": case.lesion.label,
        },
        "photo": {
            "content_type": case.image_content_type,
            "width": case.image_width,
            "height": case.image_height,
            "sha256": case.sha256,
            "original_filename": case.original_filename,
        },
        "case": state,
        "reviews": ReviewSerializer(reviews, many=True).data,
    }


# --- FHIR R4 -----------------------------------------------------------------------------------------


def _id(case: Case, part: str) -> str:
    return str(uuid.uuid5(_IDS, f"{case.public_id}/{part}"))


def _coding(system: str, code: str, display: str | None = None) -> Coding:
    coding = Coding()
    coding.system, coding.code, coding.display = system, code, display
    return coding


def _concept(text: str, *codings: Coding) -> CodeableConcept:
    concept = CodeableConcept()
    concept.text = text
    concept.coding = list(codings) or None
    return concept


def _diagnosis(code: str) -> CodeableConcept:
    name = CLASS_NAMES.get(code, code)
    return _concept(name, _coding(DIAGNOSIS_SYSTEM, code, name))


def _ref(resource_type: str, resource_id: str, display: str | None = None) -> FHIRReference:
    reference = FHIRReference()
    reference.reference = f"urn:uuid:{resource_id}"
    reference.type = resource_type
    reference.display = display
    return reference


def _display_only(display: str) -> FHIRReference:
    reference = FHIRReference()
    reference.display = display
    return reference


def _datetime(value: datetime) -> FHIRDateTime:
    return FHIRDateTime(value.isoformat())


def _instant(value: datetime) -> FHIRInstant:
    return FHIRInstant(value.isoformat())


def _note(text: str) -> Annotation:
    annotation = Annotation()
    annotation.text = text
    return annotation


def _ratio(value: float) -> Quantity:
    quantity = Quantity()
    quantity.value, quantity.unit, quantity.system, quantity.code = round(value, 6), "1", UCUM, "1"
    return quantity


def _component(code: CodeableConcept, **value) -> ObservationComponent:
    component = ObservationComponent()
    component.code = code
    for name, content in value.items():
        setattr(component, name, content)
    return component


def _patient(case: Case) -> Patient:
    user = case.lesion.patient
    patient = Patient()
    patient.id = _id(case, "patient")
    identifier = Identifier()
    identifier.system, identifier.value = PATIENT_SYSTEM, user.username
    patient.identifier = [identifier]
    patient.active = user.is_active
    return patient


def _media(case: Case, patient: Patient, part: str, *, url: str, content_type: str) -> Media:
    media = Media()
    media.id = _id(case, part)
    media.status = "completed"
    media.type = _concept("Image", _coding(MEDIA_TYPE, "image", "Image"))
    media.subject = _ref("Patient", patient.id)
    media.createdDateTime = _datetime(case.created_at)
    media.width, media.height = case.image_width, case.image_height
    if case.lesion.body_site:
        media.bodySite = _concept(case.lesion.body_site)
    attachment = Attachment()
    attachment.contentType, attachment.url = content_type, url
    attachment.title = case.original_filename or f"photo of case {case.public_id}"
    media.content = attachment
    return media


def _observation(
    case: Case,
    patient: Patient,
    photo: Media,
    *,
    part: str,
    status: str,
    code: CodeableConcept,
    diagnosis: str,
    effective: datetime,
    issued: datetime,
) -> Observation:
    """A diagnosis read from the photo: the parts a model's and a clinician's have in common."""
    observation = Observation()
    observation.id = _id(case, part)
    observation.status = status
    observation.code = code
    observation.subject = _ref("Patient", patient.id)
    observation.effectiveDateTime = _datetime(effective)
    observation.issued = _instant(issued)
    observation.valueCodeableConcept = _diagnosis(diagnosis)
    observation.derivedFrom = [_ref("Media", photo.id)]
    return observation


def _classification(case: Case, patient: Patient, photo: Media) -> Observation:
    prediction = case.prediction
    version = prediction.model_version
    observation = _observation(
        case,
        patient,
        photo,
        part="classification",
        status="preliminary",  # a model's answer until a clinician has reviewed it
        code=_concept(
            "Skin lesion class predicted by a model",
            _coding(OBSERVATION_SYSTEM, "model-classification", "Model classification"),
        ),
        diagnosis=prediction.top_class,
        effective=case.created_at,
        issued=prediction.created_at,
    )
    observation.category = [
        _concept("Imaging", _coding(OBSERVATION_CATEGORY, "imaging", "Imaging"))
    ]
    engine = prediction.engine or "engine not recorded"
    observation.method = _concept(
        f"SkinSight model {version.name} ({version.architecture}, {engine}); "
        "probabilities calibrated by temperature scaling"
    )
    components = [
        _component(_diagnosis(code), valueQuantity=_ratio(probability))
        for code, probability in sorted(prediction.probabilities.items(), key=lambda i: -i[1])
    ]
    malignant = malignant_probability(prediction.probabilities)
    components.append(
        _component(
            _concept(
                f"Probability of a malignant class ({', '.join(MALIGNANT_CLASSES)})",
                _coding(OBSERVATION_SYSTEM, "malignant-probability", "Malignant probability"),
            ),
            valueQuantity=_ratio(malignant),
        )
    )
    if prediction.decision:
        components.append(
            _component(
                _concept(
                    "Refer to a clinician",
                    _coding(OBSERVATION_SYSTEM, "refer", "Refer to a clinician"),
                ),
                valueBoolean=prediction.decision == "refer",
            )
        )
    observation.component = components
    observation.note = [_note(referral_advice(prediction))]
    return observation


def _review(case: Case, patient: Patient, review: Review, photo: Media) -> Observation:
    observation = _observation(
        case,
        patient,
        photo,
        part=f"review-{review.pk}",
        status="final",
        code=_concept(
            "Skin lesion diagnosis by a clinician",
            _coding(OBSERVATION_SYSTEM, "clinician-diagnosis", "Clinician diagnosis"),
        ),
        diagnosis=review.diagnosis,
        effective=review.created_at,
        issued=review.created_at,
    )
    observation.performer = [_display_only(review.reviewer.username)]
    if review.notes:
        observation.note = [_note(review.notes)]
    return observation


def _report_status(case: Case, reviews: list[Review]) -> str:
    if case.status in (CaseStatus.FAILED, CaseStatus.REJECTED):
        return "cancelled"
    if case.status != CaseStatus.DONE:
        return "registered"
    return "final" if reviews else "preliminary"


def _conclusion(case: Case, reviews: list[Review]) -> tuple[str, str | None]:
    """The report's conclusion in words, and the diagnosis code it rests on."""
    if case.status != CaseStatus.DONE:
        return (case.status_reason or f"Not classified ({case.get_status_display()}).", None)
    prediction = case.prediction
    named = "most likely" if prediction.names_most_probable else "reading, rare lesions weighed up,"
    model = (
        f"Model: {named} {CLASS_NAMES.get(prediction.top_class, prediction.top_class)} "
        f"({prediction.top_probability:.0%}). {referral_advice(prediction)}"
    )
    if not reviews:
        return (f"{model} Not yet reviewed by a clinician; decision support only.", None)
    latest = reviews[0]
    return (
        f"Clinician ({latest.reviewer.username}): "
        f"{CLASS_NAMES.get(latest.diagnosis, latest.diagnosis)}. {model}",
        latest.diagnosis,
    )


def case_fhir_bundle(case: Case, reviews: list[Review], *, base_url: str) -> dict:
    """The case as a FHIR R4 Bundle, as JSON; ``reviews`` newest first; ``base_url`` makes the photo's
    and heat map's URLs absolute (they need the same login or token as the API)."""
    patient = _patient(case)
    photo = _media(
        case,
        patient,
        "photo",
        url=base_url.rstrip("/") + case_image_url(case),
        content_type=case.image_content_type,
    )
    media = [photo]
    observations: list[Observation] = []
    prediction = getattr(case, "prediction", None)
    if prediction is not None:
        observations.append(_classification(case, patient, photo))
        heatmap = getattr(prediction, "heatmap", None)
        if heatmap is not None and heatmap.status == HeatMapStatus.DONE:
            overlay = _media(
                case,
                patient,
                "heatmap",
                url=base_url.rstrip("/") + case_heatmap_url(case),
                content_type="image/png",
            )
            overlay.note = [
                _note(
                    f"Grad-CAM heat map for {heatmap.target_class} (layer {heatmap.layer}); "
                    "a transparent overlay at the photo's size"
                )
            ]
            media.append(overlay)
    observations += [_review(case, patient, review, photo) for review in reviews]

    report = DiagnosticReport()
    report.id = _id(case, "report")
    identifier = Identifier()
    identifier.system, identifier.value = CASE_SYSTEM, str(case.public_id)
    report.identifier = [identifier]
    report.status = _report_status(case, reviews)
    report.code = _concept(
        "Skin lesion photo assessment",
        _coding(OBSERVATION_SYSTEM, "skin-lesion-assessment", "Skin lesion photo assessment"),
    )
    report.subject = _ref("Patient", patient.id)
    report.effectiveDateTime = _datetime(case.created_at)
    issued = max(
        [case.created_at]
        + ([prediction.created_at] if prediction is not None else [])
        + [review.created_at for review in reviews]
    )
    report.issued = _instant(issued)
    report.result = [_ref("Observation", o.id) for o in observations] or None
    report.media = []
    for item, comment in zip(media, ("photo", "heat map"), strict=False):
        link = DiagnosticReportMedia()
        link.comment, link.link = comment, _ref("Media", item.id)
        report.media.append(link)
    report.conclusion, code = _conclusion(case, reviews)
    if code is not None:
        report.conclusionCode = [_diagnosis(code)]

    bundle = Bundle()
    bundle.type = "collection"
    bundle.timestamp = _instant(timezone.now())
    bundle.entry = []
    for resource in (report, patient, *observations, *media):
        entry = BundleEntry()
        entry.fullUrl, entry.resource = f"urn:uuid:{resource.id}", resource
        bundle.entry.append(entry)
    return bundle.as_json()
