from django.contrib import admin, messages

from webapp.modelops.models import ModelVersion
from webapp.modelops.services import model_version_activate


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "status", "created_at", "activated_at")
    list_filter = ("status", "architecture")
    readonly_fields = (
        "name",
        "architecture",
        "bundle_key",
        "sha256",
        "manifest",
        "metrics",
        "parent",
        "created_by",
        "created_at",
        "activated_at",
        "status",
    )
    actions = ["activate"]

    @admin.action(description="Activate the selected model (exactly one)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to activate.", messages.ERROR)
            return
        version = model_version_activate(version=queryset.get())
        self.message_user(request, f"{version.name} is now the active model.")

    def has_add_permission(self, request):
        return False
