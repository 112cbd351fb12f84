from django import forms

from webapp.audit.models import Outcome


class AuditFilter(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="User")
    object_id = forms.CharField(required=False, max_length=64, label="Record id")
    action = forms.CharField(required=False, max_length=32)
    outcome = forms.ChoiceField(choices=[("", "any"), *Outcome.choices], required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
