"""The re-run API (admins): ask for a re-run of a model version, read its report."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from webapp.api.permissions import IsAdminRole
from webapp.modelops.selectors import model_version_get
from webapp.reruns.selectors import rerun_get, rerun_report
from webapp.reruns.services import rerun_create


class RerunRequestSerializer(serializers.Serializer):
    case_ids = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    recent = serializers.IntegerField(required=False, min_value=1, max_value=500, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ModelVersionRerunView(GenericAPIView):
    """Classify chosen past cases again with this version; their own results stay as they are."""

    permission_classes = [IsAdminRole]
    serializer_class = RerunRequestSerializer

    @extend_schema(responses={201: OpenApiResponse(description="the re-run report")})
    def post(self, request, name):
        serializer = RerunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rerun = rerun_create(
            version=model_version_get(name=name),
            requested_by=request.user,
            case_ids=data["case_ids"],
            recent=data.get("recent"),
            reason=data["reason"],
        )
        return Response(rerun_report(rerun), status=status.HTTP_201_CREATED)


class RerunDetailView(GenericAPIView):
    permission_classes = [IsAdminRole]

    @extend_schema(
        responses=OpenApiResponse(description="each case's own answer beside the re-run's")
    )
    def get(self, request, public_id):
        return Response(rerun_report(rerun_get(public_id=public_id)))
