"""Rows that are history (registry entries, promotion events, clinicians' reviews): written once, never
rewritten. An integrity guard on `save`, not business logic; the admin shows these rows read-only too."""

from django.contrib import admin
from django.db import models


class ImmutableRecord(RuntimeError):
    """A saved record was about to be rewritten."""


class WriteOnceModel(models.Model):
    """Once saved, only the fields in ``MUTABLE_FIELDS`` (none by default) may change, and only through
    ``save(update_fields=...)``."""

    MUTABLE_FIELDS: frozenset[str] = frozenset()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        rewriting = update_fields is None or not set(update_fields) <= self.MUTABLE_FIELDS
        if not self._state.adding and rewriting:
            changeable = ", ".join(sorted(self.MUTABLE_FIELDS)) or "nothing"
            raise ImmutableRecord(
                f"{self._meta.verbose_name} {self} is a record: it cannot be rewritten "
                f"(changeable: {changeable})"
            )
        super().save(*args, **kwargs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """The admin's view of a record: it can be looked at, never added, changed or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
