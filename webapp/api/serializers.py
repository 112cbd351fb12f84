from rest_framework import serializers

from webapp.accounts.models import User


class CaseUploadSerializer(serializers.Serializer):
    image = serializers.FileField(required=False, help_text="JPEG, PNG or WebP photo")
    image_url = serializers.URLField(required=False, max_length=2048, help_text="http(s) URL")
    body_site = serializers.CharField(required=False, max_length=64, default="")
    patient = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.none(),
        required=False,
        help_text="Username of the patient (clinicians and admins only)",
    )
    idempotency_key = serializers.CharField(
        required=False,
        max_length=128,
        default="",
        help_text="Same key twice = one case (the Idempotency-Key header works too)",
    )

    def __init__(self, *args, patients=None, **kwargs):
        super().__init__(*args, **kwargs)
        if patients is not None:
            self.fields["patient"].queryset = patients

    def validate(self, attrs):
        if bool(attrs.get("image")) == bool(attrs.get("image_url")):
            raise serializers.ValidationError("Give exactly one of 'image' or 'image_url'.")
        return attrs


class ProbabilitySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    probability = serializers.FloatField()


class PredictionSerializer(serializers.Serializer):
    top_class = serializers.CharField()
    top_class_name = serializers.CharField()
    top_probability = serializers.FloatField()
    probabilities = ProbabilitySerializer(many=True)
    model_version = serializers.CharField()
    latency_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CaseStateSerializer(serializers.Serializer):
    """Documents the shape of `case_state()`; the data itself comes from the selector."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed", "rejected"])
    status_label = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    image_url = serializers.CharField()
    source_url = serializers.CharField()
    prediction = PredictionSerializer(allow_null=True)
    waiting_for_model = serializers.BooleanField()
