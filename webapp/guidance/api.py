"""The guidance API: the approved text per class for everyone; proposals and reviews for clinicians."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from webapp.guidance.selectors import guidance_current_all, guidance_get
from webapp.guidance.serializers import GuidanceReviewSerializer, GuidanceSerializer
from webapp.guidance.services import guidance_propose, guidance_review


class GuidanceListView(GenericAPIView):
    """The approved guidance of every diagnosis (GET); a clinician proposes a new version (POST)."""

    serializer_class = GuidanceSerializer
    pagination_class = None

    @extend_schema(responses=GuidanceSerializer(many=True))
    def get(self, request):
        current = sorted(guidance_current_all().values(), key=lambda v: v.dx)
        return Response(GuidanceSerializer(current, many=True).data)

    @extend_schema(request=GuidanceSerializer, responses={201: GuidanceSerializer})
    def post(self, request):
        serializer = GuidanceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = guidance_propose(author=request.user, **serializer.validated_data)
        return Response(GuidanceSerializer(draft).data, status=status.HTTP_201_CREATED)


class GuidanceReviewView(GenericAPIView):
    """A second clinician approves (it replaces the shown version) or rejects a draft."""

    serializer_class = GuidanceReviewSerializer

    @extend_schema(request=GuidanceReviewSerializer, responses=GuidanceSerializer)
    def post(self, request, pk):
        serializer = GuidanceReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = guidance_review(
            reviewer=request.user, version=guidance_get(pk=pk), **serializer.validated_data
        )
        return Response(GuidanceSerializer(version).data)
