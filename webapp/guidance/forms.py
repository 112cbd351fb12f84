from django import forms

from webapp.guidance.models import GuidanceVersion


class GuidanceForm(forms.ModelForm):
    class Meta:
        model = GuidanceVersion
        fields = ["what_it_is", "first_line", "see_a_doctor", "sources"]
        widgets = {name: forms.Textarea(attrs={"rows": 4}) for name in fields}
        labels = {
            "what_it_is": "What it usually is",
            "first_line": "First-line options",
            "see_a_doctor": "When to see a doctor",
            "sources": "Sources (one per line)",
        }


class GuidanceReviewForm(forms.Form):
    approve = forms.TypedChoiceField(
        choices=[("yes", "Approve"), ("no", "Reject")], coerce=lambda v: v == "yes"
    )
    note = forms.CharField(required=False, max_length=4000)
