from django import forms


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
