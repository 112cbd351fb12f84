"""Serializer fields shared by the apps' APIs."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """Text that must be sent as text: DRF's CharField turns a JSON number into its digits, so a
    client that sent the wrong field would not be told."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LookupSlugField(serializers.SlugRelatedField):
    """A reference by name or id, checked before it reaches the database: a value no row can have
    (a NUL character, a malformed id) is "does not exist", not a failed query."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid")
        try:
            return super().to_internal_value(data)
        except DjangoValidationError:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
