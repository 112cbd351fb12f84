"""Signals other apps listen to, so modelops never imports them back."""

from django.dispatch import Signal

# Sent after the transaction that made `version` the active model has committed.
model_version_activated = Signal()
