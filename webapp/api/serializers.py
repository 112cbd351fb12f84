from rest_framework import serializers

from webapp.accounts.models import User
from webapp.cases.models import Lesion
from webapp.cases.serializers import CaseSerializer
from webapp.serializer_fields import LookupSlugField


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
