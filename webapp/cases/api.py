"""The cases API: uploads, a case and its photo, heat map, exports and reviews, the review queue
and lesions. Answers use the same output serializers as the pages (``webapp.cases.serializers``)."""

import json

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ml.classes import CLASSES
from webapp.api.parsers import StrictJSONParser
from webapp.api.permissions import IsClinicianOrAdmin
from webapp.cases.exports import case_fhir_bundle, case_json
from webapp.cases.forms import ReviewQueueFilter
from webapp.cases.heatmaps import heatmap_request
from webapp.cases.models import HeatMapStatus
from webapp.cases.selectors import (
    case_get_for_user,
    case_reviews,
    case_visible_to,
    lesion_get_for_user,
    lesion_visible_to,
    patients_selectable_by,
    review_queue,
    review_queue_counts,
)
from webapp.cases.serializers import (
    CaseSerializer,
    CaseUploadSerializer,
    CaseUrlUploadSerializer,
    HeatMapSerializer,
    LesionSerializer,
    LesionSummarySerializer,
    ReviewQueuePageSerializer,
    ReviewSerializer,
)
from webapp.cases.services.deletion import case_delete
from webapp.cases.services.reviews import review_create
from webapp.cases.services.uploads import case_upload
from webapp.intake.quota import UploadRateThrottle
from webapp.storage.responses import private_object_response


class CaseListCreateView(GenericAPIView):
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]
    serializer_class = CaseSerializer

    def get_throttles(self):
        return [UploadRateThrottle()] if self.request.method == "POST" else []

    def get_queryset(self):
        return case_visible_to(self.request.user)

    @extend_schema(responses=CaseSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CaseSerializer(page, many=True, context={}).data)

    @extend_schema(
        request={
            "multipart/form-data": CaseUploadSerializer,
            "application/json": CaseUrlUploadSerializer,
        },
        responses={201: CaseSerializer, 200: CaseSerializer},
    )
    def post(self, request):
        json_body = (request.content_type or "").startswith("application/json")
        upload = CaseUrlUploadSerializer if json_body else CaseUploadSerializer
        serializer = upload(
            data=request.data,
            patients=patients_selectable_by(request.user),
            lesions=lesion_visible_to(request.user),
        )
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        fields["idempotency_key"] = (
            fields.get("idempotency_key") or request.headers.get("Idempotency-Key", "")[:128]
        )
        # Refusals (bad photo or URL, someone else's patient, store down) are ApplicationErrors,
        # answered by the API's exception handler with their own status.
        result = case_upload(uploaded_by=request.user, **fields)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(CaseSerializer(result.case, context={}).data, status=code)


class CaseDetailView(GenericAPIView):
    serializer_class = CaseSerializer

    @extend_schema(responses=CaseSerializer)
    def get(self, request, public_id):
        # Http404 becomes the same 404 for someone else's case as for a missing one.
        case = case_get_for_user(user=request.user, public_id=public_id)
        return Response(CaseSerializer(case, context={}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, public_id):
        """The patient (or an admin) deletes the case, its photo and its results; the audit keeps it."""
        case_delete(case=case_get_for_user(user=request.user, public_id=public_id), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImageRenderer(BaseRenderer):
    """Lets a client that asks for `image/*` reach the photo view; errors still go out as JSON."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class CaseImageView(APIView):
    """The stored photo, for the same users and tokens that may read the case."""

    renderer_classes = [JSONRenderer, ImageRenderer]

    @extend_schema(
        responses={
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="the photo"),
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "image/webp"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="no such case, or not yours to see"),
        }
    )
    def get(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        return private_object_response(
            case.image_key, what="The photo", content_type=case.image_content_type, max_age=300
        )


class CaseHeatMapView(APIView):
    """The Grad-CAM heat map of the case's prediction (a transparent PNG at the photo's size), for the
    same users and tokens that may read the case; clinicians ask again for a missing or failed one."""

    renderer_classes = [JSONRenderer, ImageRenderer]

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="the overlay"),
            404: OpenApiResponse(description="no such case, not yours, or no heat map yet"),
        }
    )
    def get(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        heatmap = getattr(getattr(case, "prediction", None), "heatmap", None)
        if heatmap is None or heatmap.status != HeatMapStatus.DONE:
            raise Http404("This photo has no heat map (yet); see the case's prediction.heatmap.")
        return private_object_response(
            heatmap.image_key, what="The heat map", content_type="image/png", max_age=300
        )

    @extend_schema(
        request=None,
        responses={
            202: HeatMapSerializer,
            409: OpenApiResponse(description="already made or being made"),
        },
    )
    def post(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        heatmap = heatmap_request(case=case, by=request.user)
        return Response(HeatMapSerializer(heatmap).data, status=status.HTTP_202_ACCEPTED)


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


def _attachment(response: Response, filename: str) -> Response:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CaseExportView(APIView):
    """The case as one SkinSight JSON document: its state, result, heat map grid, lesion and reviews."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="none")})
    def get(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        document = case_json(case, list(case_reviews(case)))
        return _attachment(Response(document), f"case-{case.public_id}.json")


class CaseFhirView(APIView):
    """The case as a FHIR R4 Bundle: a DiagnosticReport with its Observations, Media and Patient."""

    renderer_classes = [FhirJsonRenderer, JSONRenderer]

    @extend_schema(
        responses={
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="a FHIR R4 Bundle of type collection"
            ),
            404: OpenApiResponse(description="no such case, or not yours to see"),
        }
    )
    def get(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        bundle = case_fhir_bundle(
            case, list(case_reviews(case)), base_url=request.build_absolute_uri("/")
        )
        return _attachment(Response(bundle), f"case-{case.public_id}.fhir.json")


class CaseReviewsView(GenericAPIView):
    """A case's clinician reviews (everyone who may see the case); clinicians and admins add one."""

    serializer_class = ReviewSerializer
    pagination_class = None

    @extend_schema(responses=ReviewSerializer(many=True))
    def get(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        return Response(ReviewSerializer(case_reviews(case), many=True).data)

    @extend_schema(request=ReviewSerializer, responses={201: ReviewSerializer})
    def post(self, request, public_id):
        case = case_get_for_user(user=request.user, public_id=public_id)
        serializer = ReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = review_create(case=case, reviewer=request.user, **serializer.validated_data)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class ReviewQueueView(GenericAPIView):
    """The clinician's review queue: the same filters and order as the page, with its counts."""

    serializer_class = CaseSerializer
    permission_classes = [IsClinicianOrAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter("reviewed", str, enum=["yes", "no"]),
            OpenApiParameter("refer", str, enum=["yes", "no"]),
            OpenApiParameter("top_class", str, enum=list(CLASSES)),
            OpenApiParameter("since", OpenApiTypes.DATE),
            OpenApiParameter("until", OpenApiTypes.DATE),
            OpenApiParameter("patient", str, description="part of the patient's username"),
            OpenApiParameter(
                "q",
                str,
                description="search words, each found in the patient, body site, lesion label, "
                "file name, case id or review notes",
            ),
            OpenApiParameter("page", int),
        ],
        responses=ReviewQueuePageSerializer,
    )
    def get(self, request):
        form = ReviewQueueFilter(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        cases = review_queue(request.user, **form.filters())
        page = self.paginate_queryset(cases)
        response = self.get_paginated_response(CaseSerializer(page, many=True, context={}).data)
        response.data["counts"] = review_queue_counts(cases)
        return response


class LesionListView(GenericAPIView):
    serializer_class = LesionSummarySerializer

    def get_queryset(self):
        return lesion_visible_to(self.request.user)

    @extend_schema(responses=LesionSummarySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LesionSummarySerializer(page, many=True).data)


class LesionDetailView(GenericAPIView):
    serializer_class = LesionSerializer

    @extend_schema(responses=LesionSerializer)
    def get(self, request, public_id):
        lesion = lesion_get_for_user(user=request.user, public_id=public_id)
        return Response(LesionSerializer(lesion).data)
