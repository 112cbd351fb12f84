from django.contrib import admin

from webapp.cases.models import Case, Lesion, Prediction


class PredictionInline(admin.StackedInline):
    model = Prediction
    can_delete = False
    readonly_fields = (
        "model_version",
        "probabilities",
        "top_class",
        "top_probability",
        "latency_ms",
        "result_key",
        "created_at",
    )
    extra = 0


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("public_id", "patient_name", "status", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("public_id", "lesion__patient__username")
    readonly_fields = [f.name for f in Case._meta.fields]
    inlines = [PredictionInline]

    @admin.display(description="patient")
    def patient_name(self, obj):
        return obj.lesion.patient.username

    def has_add_permission(self, request):
        return False


@admin.register(Lesion)
class LesionAdmin(admin.ModelAdmin):
    list_display = ("id", "patient", "body_site", "label", "created_at")
    raw_id_fields = ("patient",)
