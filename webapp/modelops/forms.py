from django import forms

from ml.architecture_defaults import ARCHITECTURE_NAMES
from ml.preprocess import INPUT_SCALINGS
from webapp.modelops.models import Dataset, DatasetLocation, ImportKind

PRESET_CHOICES = [
    (
        "standard",
        "Standard: the recipe the model card measured, on photos from other sources too (about an hour on 2 CPU cores)",
    ),
    ("quick", "Quick: minutes, to check the data and set-up (not for patients)"),
    ("", "None: the architecture's paper settings, or the epochs and size below"),
]


class TrainingRunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), empty_label=None)
    architecture = forms.ChoiceField(
        choices=[(name, name) for name in ARCHITECTURE_NAMES], initial="mobilenet_v2"
    )
    preset = forms.ChoiceField(choices=PRESET_CHOICES, required=False, initial="standard")
    image_size = forms.IntegerField(
        required=False, min_value=32, max_value=1024, help_text="pixels; empty: the preset's"
    )
    head_epochs = forms.IntegerField(required=False, min_value=0, max_value=500)
    fine_tune_epochs = forms.IntegerField(required=False, min_value=0, max_value=500)
    max_minutes = forms.FloatField(
        required=False, min_value=1, help_text="wall-clock cap; empty: the preset's"
    )
    limit_per_class = forms.IntegerField(
        required=False, min_value=1, help_text="at most this many images per class (quick checks)"
    )
    include_confirmed_cases = forms.BooleanField(
        required=False, help_text="add the cases clinicians have confirmed to the training data"
    )

    OPTION_FIELDS = (
        "architecture",
        "image_size",
        "head_epochs",
        "fine_tune_epochs",
        "max_minutes",
        "limit_per_class",
    )

    def options(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in self.OPTION_FIELDS
            if self.cleaned_data.get(name) not in (None, "")
        }


class DatasetForm(forms.Form):
    name = forms.SlugField(max_length=80)
    location_kind = forms.ChoiceField(choices=DatasetLocation.choices)
    location = forms.CharField(
        max_length=1024,
        help_text="absolute folder on the training server, or key prefix in the bucket; it must "
        "hold HAM10000_metadata.csv with the images anywhere below it",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ModelImportForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices, widget=forms.RadioSelect, initial="bundle")
    bundle = forms.FileField(required=False, help_text="for a bundle: the .zip")
    model = forms.FileField(required=False, help_text="for a model file: the .keras or .h5 file")
    json = forms.FileField(required=False, help_text="for JSON + weights: the model JSON")
    weights = forms.FileField(required=False, help_text="for JSON + weights: the H5 weights")
    architecture = forms.CharField(
        max_length=64,
        initial="mobilenet_v2",
        help_text="recorded with the model, e.g. mobilenet_v2",
    )
    input_scale = forms.ChoiceField(
        choices=[(k, f"{k}: {v}") for k, v in INPUT_SCALINGS.items()],
        initial="0-255",
        help_text="the pixel range the model was trained on (Keras files only; bundles record it)",
    )
    name = forms.CharField(required=False, max_length=120, help_text="version name (optional)")

    def uploads(self) -> dict:
        return {
            role: self.cleaned_data.get(role) for role in ("bundle", "model", "json", "weights")
        }
