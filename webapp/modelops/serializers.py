"""The model-operations API's request and response shapes."""

from rest_framework import serializers

from ml.architecture_defaults import ARCHITECTURE_NAMES
from ml.preprocess import INPUT_SCALINGS
from ml.training_config import PRESETS
from webapp.modelops.models import Dataset, DatasetLocation, ImportKind
from webapp.serializer_fields import LookupSlugField


class TrainingRunRequestSerializer(serializers.Serializer):
    dataset = LookupSlugField(slug_field="name", queryset=Dataset.objects.all())
    preset = serializers.ChoiceField(choices=["", *PRESETS], required=False, default="standard")
    architecture = serializers.ChoiceField(choices=ARCHITECTURE_NAMES, default="mobilenet_v2")
    options = serializers.DictField(
        required=False,
        default=dict,
        help_text='explicit training options over the preset, e.g. {"head_epochs": 2, '
        '"image_size": 128, "max_minutes": 30}',
    )
    include_confirmed_cases = serializers.BooleanField(required=False, default=False)


class TrainingRunStateSerializer(serializers.Serializer):
    """Documents the shape of `training_run_state()`; the data comes from the selector."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    finished = serializers.BooleanField()
    reason = serializers.CharField()
    problems = serializers.ListField(child=serializers.DictField())
    requested_by = serializers.CharField()
    dataset = serializers.CharField()
    options = serializers.DictField()
    device = serializers.CharField()
    progress = serializers.DictField()
    model_version = serializers.CharField(allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DatasetSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=80)
    location_kind = serializers.ChoiceField(choices=DatasetLocation.choices)
    location = serializers.CharField(max_length=1024)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ModelImportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    bundle = serializers.FileField(required=False)
    model = serializers.FileField(required=False)
    json = serializers.FileField(required=False)
    weights = serializers.FileField(required=False)
    architecture = serializers.CharField(max_length=64)
    input_scale = serializers.ChoiceField(choices=list(INPUT_SCALINGS), default="0-255")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
