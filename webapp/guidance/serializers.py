from django.db import models
from rest_framework import serializers

from webapp.guidance.models import GuidanceVersion
from webapp.serializer_fields import StrictCharField


class GuidanceSerializer(serializers.ModelSerializer):
    """A version of the guidance for one diagnosis: decision support, not a prescription."""

    written_by = serializers.CharField(
        source="written_by.username", default=None, allow_null=True, read_only=True
    )
    reviewed_by = serializers.CharField(
        source="reviewed_by.username", default=None, allow_null=True, read_only=True
    )
    sources = StrictCharField(help_text="One source per line")
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
    source_lines = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = GuidanceVersion
        fields = [
            "id",
            "dx",
            "version",
            "what_it_is",
            "first_line",
            "see_a_doctor",
            "sources",
            "source_lines",
            "status",
            "written_by",
            "written_at",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = [
            "id",
            "version",
            "status",
            "written_at",
            "reviewed_at",
            "review_note",
        ]


class GuidanceReviewSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    note = StrictCharField(required=False, allow_blank=True, max_length=4000, default="")
