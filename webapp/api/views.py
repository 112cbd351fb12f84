from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from webapp.accounts.models import Role
from webapp.api.serializers import CaseStateSerializer, CaseUploadSerializer
from webapp.cases.imaging import ImageRejected
from webapp.cases.selectors import (
    case_get_for_user,
    case_state,
    case_visible_to,
    patients_selectable_by,
)
from webapp.cases.services import CasePermissionDenied, case_create_from_file, case_create_from_url
from webapp.cases.url_fetch import UrlRejected
from webapp.modelops.selectors import model_version_get_active
from webapp.storage import store


class CaseListCreateView(GenericAPIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    serializer_class = CaseStateSerializer

    def get_throttles(self):
        if self.request.method == "POST":
            self.throttle_scope = "uploads"
            return [ScopedRateThrottle()]
        return []

    def get_queryset(self):
        return case_visible_to(self.request.user)

    @extend_schema(responses=CaseStateSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        model_active = model_version_get_active() is not None
        return self.get_paginated_response(
            [case_state(case, model_active=model_active) for case in page]
        )

    @extend_schema(
        request={
            "multipart/form-data": CaseUploadSerializer,
            "application/json": CaseUploadSerializer,
        },
        responses={201: CaseStateSerializer, 200: CaseStateSerializer},
    )
    def post(self, request):
        serializer = CaseUploadSerializer(
            data=request.data, patients=patients_selectable_by(request.user)
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        patient = data.get("patient")
        if patient is None:
            if request.user.role != Role.PATIENT:
                return Response(
                    {"patient": ["Name the patient (username) this photo belongs to."]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            patient = request.user
        common = {
            "uploaded_by": request.user,
            "patient": patient,
            "body_site": data.get("body_site", ""),
            "idempotency_key": data.get("idempotency_key")
            or request.headers.get("Idempotency-Key", "")[:128],
        }
        try:
            if data.get("image"):
                result = case_create_from_file(upload=data["image"], **common)
            else:
                result = case_create_from_url(url=data["image_url"], **common)
        except (ImageRejected, UrlRejected) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except CasePermissionDenied as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except store.StorageUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(case_state(result.case), status=code)


class CaseDetailView(GenericAPIView):
    serializer_class = CaseStateSerializer

    @extend_schema(responses=CaseStateSerializer)
    def get(self, request, public_id):
        # Http404 becomes the same 404 for someone else's case as for a missing one.
        case = case_get_for_user(user=request.user, public_id=public_id)
        return Response(case_state(case))
