from django import forms
from django.conf import settings

from ml.classes import CLASS_NAMES, CLASSES
from webapp.accounts.models import Role


class LesionChoiceField(forms.ModelChoiceField):
    def __init__(self, *args, show_patient: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.show_patient = show_patient

    def label_from_instance(self, lesion):
        where = f"{lesion} (since {lesion.created_at:%d %b %Y})"
        return f"{lesion.patient.username}: {where}" if self.show_patient else where


class UploadForm(forms.Form):
    image = forms.FileField(
        required=False,
        label="Photo of the lesion",
        help_text=f"JPEG, PNG or WebP, up to {settings.UPLOAD_MAX_BYTES // 10**6} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    image_url = forms.URLField(
        required=False,
        max_length=2048,
        label="…or the address (URL) of a photo",
        assume_scheme="https",
    )
    patient = forms.ModelChoiceField(queryset=None, required=False, label="Patient")
    lesion = LesionChoiceField(
        queryset=None,
        required=False,
        show_patient=False,
        to_field_name="public_id",
        empty_label="A new lesion",
        label="Which lesion",
        help_text="A lesion photographed before, to follow it over time, or a new one.",
    )
    body_site = forms.CharField(
        required=False, max_length=64, label="Where on the body (for a new lesion)"
    )

    def __init__(self, *args, user, patients, lesions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lesion"].queryset = lesions
        if user.role == Role.PATIENT and not user.is_admin_role:
            del self.fields["patient"]
        else:
            self.fields["patient"].queryset = patients
            self.fields["lesion"].show_patient = True

    def clean(self):
        cleaned = super().clean()
        has_file = bool(cleaned.get("image"))
        has_url = bool(cleaned.get("image_url"))
        if has_file == has_url and not self.errors:
            raise forms.ValidationError("Choose a photo to upload or give its URL, not both.")
        return cleaned


class ReviewForm(forms.Form):
    diagnosis = forms.ChoiceField(
        choices=[(code, f"{CLASS_NAMES[code]} ({code})") for code in CLASSES],
        label="Your diagnosis",
    )
    notes = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Note (why, or what you will do)",
    )


YES_NO = [("", "any"), ("yes", "yes"), ("no", "no")]


class ReviewQueueFilter(forms.Form):
    """The review queue's filters, read from the query string by the page and the API alike."""

    reviewed = forms.ChoiceField(choices=YES_NO, required=False, label="Reviewed")
    refer = forms.ChoiceField(choices=YES_NO, required=False, label="Referred")
    top_class = forms.ChoiceField(
        choices=[("", "any"), *((code, code) for code in CLASSES)],
        required=False,
        label="Predicted class",
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    patient = forms.CharField(required=False, max_length=150, label="Patient")
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="words found in the patient, body site, lesion label, file name, "
        "case id or review notes",
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("'From' is after 'To'.")
        return cleaned

    def filters(self) -> dict:
        data = self.cleaned_data
        as_bool = {"": None, "yes": True, "no": False}
        return {
            "reviewed": as_bool[data.get("reviewed") or ""],
            "refer": as_bool[data.get("refer") or ""],
            "top_class": data.get("top_class") or "",
            "since": data.get("since"),
            "until": data.get("until"),
            "patient": (data.get("patient") or "").strip(),
            "search": (data.get("q") or "").split(),
        }
