from django import forms
from django.conf import settings

from webapp.accounts.models import Role


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
    body_site = forms.CharField(required=False, max_length=64, label="Where on the body (optional)")
    patient = forms.ModelChoiceField(queryset=None, required=False, label="Patient")

    def __init__(self, *args, user, patients, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user.role == Role.PATIENT and not user.is_admin_role:
            del self.fields["patient"]
        else:
            self.fields["patient"].queryset = patients
            self.fields["patient"].required = True

    def clean(self):
        cleaned = super().clean()
        has_file = bool(cleaned.get("image"))
        has_url = bool(cleaned.get("image_url"))
        if has_file == has_url and not self.errors:
            raise forms.ValidationError("Choose a photo to upload or give its URL, not both.")
        return cleaned

    def chosen_patient(self):
        return self.cleaned_data.get("patient") or self.user


class RerunForm(forms.Form):
    case_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="case ids, one per line (or leave empty and give a number below)",
    )
    recent = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=500,
        help_text="or: this many most recent classified cases",
    )
    reason = forms.CharField(required=False, max_length=2000)

    def case_id_list(self) -> list[str]:
        return [
            line.strip() for line in self.cleaned_data.get("case_ids", "").split() if line.strip()
        ]
