"""How cases and lesions are shown: the one representation that the pages, the JSON view, the REST API
and the live push all send. Reads stay in selectors.py; labels, URLs and comparisons are made here."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.classes import CLASS_NAMES
from ml.referral import LOW_CONFIDENCE, MALIGNANT, malignant_probability
from webapp.accounts.models import User
from webapp.cases.models import (
    Case,
    CaseStatus,
    Decision,
    HeatMap,
    HeatMapStatus,
    Lesion,
    Prediction,
    Review,
)
from webapp.guidance.selectors import guidance_current_all
from webapp.guidance.serializers import GuidanceSerializer
from webapp.modelops.selectors import any_model_active
from webapp.serializer_fields import LookupSlugField


def case_image_url(case: Case) -> str:
    # The API's photo route: it takes a token as well as the session, so API clients can follow it.
    return reverse("api:case-image", kwargs={"public_id": case.public_id})


class ProbabilitySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    probability = serializers.FloatField()


def referral_advice(prediction: Prediction) -> str:
    """The decision in plain language, for the patient, before any class name or number."""
    if prediction.decision == Decision.ROUTINE:
        return (
            "The model found nothing that calls for a referral. This is not a diagnosis: "
            "see a clinician if the spot changes, bleeds, itches or worries you."
        )
    reasons = set(prediction.decision_reasons or [])
    if prediction.decision != Decision.REFER:
        return "This result was made before referral decisions were recorded; ask a clinician."
    if MALIGNANT in reasons:
        chance = round(100 * (prediction.malignant_probability or 0))
        return (
            "Please have this spot checked by a clinician soon. The model gives it a "
            f"{chance}% chance of being one of the skin cancers it knows (melanoma, basal cell "
            "carcinoma, actinic keratosis); it errs on the side of caution."
        )
    if LOW_CONFIDENCE in reasons:
        return "Please have this spot checked by a clinician: the model is not sure what it is."
    return (
        "Please have this spot checked by a clinician: this model has no validated rule for "
        "deciding when a referral is not needed."
    )


def case_heatmap_url(case: Case) -> str:
    return reverse("api:case-heatmap", kwargs={"public_id": case.public_id})


class HeatMapSerializer(serializers.ModelSerializer):
    """A prediction's Grad-CAM heat map: a transparent PNG at the photo's size, laid over the photo."""

    status_label = serializers.CharField(source="get_status_display")
    method = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = HeatMap
        fields = [
            "status",
            "status_label",
            "method",
            "target_class",
            "layer",
            "image_url",
            "error",
            "created_at",
            "finished_at",
        ]

    def get_method(self, heatmap) -> str:
        return "grad-cam"

    def get_image_url(self, heatmap) -> str | None:
        if heatmap.status != HeatMapStatus.DONE:
            return None
        return case_heatmap_url(heatmap.prediction.case)


class PredictionSerializer(serializers.ModelSerializer):
    top_class_name = serializers.SerializerMethodField()
    decision_label = serializers.CharField(source="get_decision_display")
    advice = serializers.SerializerMethodField()
    guidance = serializers.SerializerMethodField()
    probabilities = serializers.SerializerMethodField()
    malignant_probability = serializers.SerializerMethodField()
    model_version = serializers.CharField(source="model_version.name")
    heatmap = serializers.SerializerMethodField()
    top_class_is_most_probable = serializers.BooleanField(
        source="names_most_probable",
        read_only=True,
        help_text="False when the model's top-class rule, which weighs rare lesions as much as "
        "common ones, named a class other than the most probable one",
    )
    most_probable_class = serializers.CharField(read_only=True)

    class Meta:
        model = Prediction
        fields = [
            "top_class",
            "top_class_name",
            "top_probability",
            "top_class_is_most_probable",
            "most_probable_class",
            "probabilities",
            "malignant_probability",
            "decision",
            "decision_label",
            "decision_reasons",
            "advice",
            "guidance",
            "model_version",
            "engine",
            "latency_ms",
            "created_at",
            "heatmap",
        ]

    def get_top_class_name(self, prediction) -> str:
        return CLASS_NAMES.get(prediction.top_class, prediction.top_class)

    @extend_schema_field(ProbabilitySerializer(many=True))
    def get_probabilities(self, prediction) -> list[dict]:
        ordered = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
        return [
            {"code": code, "name": CLASS_NAMES.get(code, code), "probability": p}
            for code, p in ordered
        ]

    def get_malignant_probability(self, prediction) -> float:
        return malignant_probability(prediction.probabilities)

    @extend_schema_field(HeatMapSerializer(allow_null=True))
    def get_heatmap(self, prediction) -> dict | None:
        heatmap = getattr(prediction, "heatmap", None)
        return HeatMapSerializer(heatmap).data if heatmap is not None else None

    def get_advice(self, prediction) -> str:
        return referral_advice(prediction)

    @extend_schema_field(GuidanceSerializer(allow_null=True))
    def get_guidance(self, prediction) -> dict | None:
        """The approved guidance for the top class (looked up once per list, not per case)."""
        if "guidance" not in self.context:
            self.context["guidance"] = guidance_current_all()
        version = self.context["guidance"].get(prediction.top_class)
        return GuidanceSerializer(version).data if version is not None else None


class CaseSerializer(serializers.ModelSerializer):
    """A case's job state and result. Whatever several cases share (is a model active, the approved
    guidance) is looked up once per serializer context: serialize a list with one context."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    status_label = serializers.CharField(source="get_status_display")
    reason = serializers.CharField(source="status_reason")
    lesion = serializers.UUIDField(source="lesion.public_id")
    image_url = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()
    waiting_for_model = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "status",
            "status_label",
            "reason",
            "created_at",
            "started_at",
            "finished_at",
            "lesion",
            "image_url",
            "source_url",
            "prediction",
            "waiting_for_model",
        ]

    def get_image_url(self, case) -> str:
        return case_image_url(case)

    @extend_schema_field(PredictionSerializer(allow_null=True))
    def get_prediction(self, case) -> dict | None:
        # A prediction is written in the transaction that makes its case done, and done is final:
        # a case in any other state has none, and asking would cost a query per case.
        if case.status != CaseStatus.DONE:
            return None
        prediction = getattr(case, "prediction", None)
        if prediction is None:
            return None
        return PredictionSerializer(prediction, context=self.context).data

    def get_waiting_for_model(self, case) -> bool:
        if case.status != CaseStatus.QUEUED:
            return False
        if self.context.get("model_active") is None:
            self.context["model_active"] = any_model_active()
        return not self.context["model_active"]


def case_state(case: Case) -> dict:
    """The state a page, the JSON view and the live push send for one case."""
    return CaseSerializer(case, context={}).data


class ReviewSerializer(serializers.ModelSerializer):
    """A clinician's diagnosis of a case; reviews are kept, newest first, never edited."""

    reviewer = serializers.CharField(source="reviewer.username", read_only=True)
    diagnosis_name = serializers.SerializerMethodField()
    agrees_with_model = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = [
            "diagnosis",
            "diagnosis_name",
            "notes",
            "reviewer",
            "created_at",
            "agrees_with_model",
        ]
        read_only_fields = ["created_at"]

    def get_diagnosis_name(self, review) -> str:
        return CLASS_NAMES.get(review.diagnosis, review.diagnosis)

    def get_agrees_with_model(self, review) -> bool | None:
        prediction = getattr(review.case, "prediction", None)
        return None if prediction is None else prediction.top_class == review.diagnosis


class VisitSerializer(serializers.Serializer):
    """One photo of a lesion in its timeline, and what changed since the visit before it."""

    case = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    image_url = serializers.CharField()
    results_url = serializers.CharField()
    top_class = serializers.CharField(allow_null=True)
    top_class_name = serializers.CharField(allow_null=True)
    top_probability = serializers.FloatField(allow_null=True)
    top_class_is_most_probable = serializers.BooleanField(allow_null=True)
    malignant_probability = serializers.FloatField(allow_null=True)
    previous_top_class = serializers.CharField(
        allow_null=True, help_text="The top class at the last classified visit before this one"
    )
    top_class_changed = serializers.BooleanField()
    malignant_change = serializers.FloatField(
        allow_null=True, help_text="Malignant probability now minus at the last classified visit"
    )


def lesion_visits(cases: list[Case]) -> list[dict]:
    """Each case of a lesion, oldest first, compared with the last classified visit before it."""
    visits, previous = [], None
    for case in sorted(cases, key=lambda c: (c.created_at, c.pk)):
        prediction = getattr(case, "prediction", None)
        visit = {
            "case": case.public_id,
            "created_at": case.created_at,
            "status": case.status,
            "status_label": case.get_status_display(),
            "image_url": case_image_url(case),
            "results_url": reverse("cases:results", kwargs={"public_id": case.public_id}),
            "top_class": None,
            "top_class_name": None,
            "top_probability": None,
            "top_class_is_most_probable": None,
            "malignant_probability": None,
            "previous_top_class": previous.top_class if previous else None,
            "top_class_changed": False,
            "malignant_change": None,
        }
        if prediction is not None:
            malignant = malignant_probability(prediction.probabilities)
            visit.update(
                top_class=prediction.top_class,
                top_class_name=CLASS_NAMES.get(prediction.top_class, prediction.top_class),
                top_probability=prediction.top_probability,
                top_class_is_most_probable=prediction.names_most_probable,
                malignant_probability=malignant,
            )
            if previous is not None:
                visit["top_class_changed"] = prediction.top_class != previous.top_class
                visit["malignant_change"] = malignant - malignant_probability(
                    previous.probabilities
                )
            previous = prediction
        visits.append(visit)
    return visits


class LesionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    patient = serializers.CharField(source="patient.username")
    visits = serializers.SerializerMethodField()

    class Meta:
        model = Lesion
        fields = ["id", "patient", "body_site", "label", "created_at", "visits"]

    @extend_schema_field(VisitSerializer(many=True))
    def get_visits(self, lesion) -> list[dict]:
        return VisitSerializer(lesion_visits(list(lesion.cases.all())), many=True).data


class LesionSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    patient = serializers.CharField(source="patient.username")
    visit_count = serializers.IntegerField()
    last_visit_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = Lesion
        fields = [
            "id",
            "patient",
            "body_site",
            "label",
            "created_at",
            "visit_count",
            "last_visit_at",
        ]


# --- API requests ----------------------------------------------------------------------------------


class CaseUploadSerializer(serializers.Serializer):
    image = serializers.FileField(required=False, help_text="JPEG, PNG or WebP photo")
    image_url = serializers.URLField(required=False, max_length=2048, help_text="http(s) URL")
    body_site = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        default="",
        help_text="Where on the body, for a new lesion",
    )
    patient = LookupSlugField(
        slug_field="username",
        queryset=User.objects.none(),
        required=False,
        help_text="Username of the patient (clinicians and admins; implied by `lesion`)",
    )
    lesion = LookupSlugField(
        slug_field="public_id",
        queryset=Lesion.objects.none(),
        required=False,
        help_text="Id of a lesion photographed before, to follow it over time; omit for a new one",
    )
    idempotency_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=128,
        default="",
        help_text="Same key twice = one case (the Idempotency-Key header works too)",
    )

    def __init__(self, *args, patients=None, lesions=None, **kwargs):
        # The choices are the requesting user's; without them (the schema) nothing is accepted.
        super().__init__(*args, **kwargs)
        if patients is not None:
            self.fields["patient"].queryset = patients
        if lesions is not None:
            self.fields["lesion"].queryset = lesions

    def validate(self, attrs):
        if bool(attrs.get("image")) == bool(attrs.get("image_url")):
            raise serializers.ValidationError("Give exactly one of 'image' or 'image_url'.")
        return attrs


class CaseUrlUploadSerializer(CaseUploadSerializer):
    """A JSON upload: a JSON body cannot carry a file, so it names the photo by URL."""

    image = None
    image_url = serializers.URLField(
        max_length=2048,
        help_text="http(s) URL of the photo",
        error_messages={
            "required": "A JSON upload names its photo with 'image_url'; to send the file "
            "itself, post multipart/form-data with 'image'."
        },
    )


class ReviewQueueCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="cases in the filtered queue")
    unreviewed = serializers.IntegerField(help_text="of those, waiting for a review")
    unreviewed_referred = serializers.IntegerField(help_text="of those, referred by the model")


class ReviewQueuePageSerializer(serializers.Serializer):
    """One page of the review queue, with the counts of the whole filtered queue."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CaseSerializer(many=True)
    counts = ReviewQueueCountsSerializer()
