from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "webapp.audit"
    default_auto_field = "django.db.models.BigAutoField"
