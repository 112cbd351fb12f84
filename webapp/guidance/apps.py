from django.apps import AppConfig


class GuidanceConfig(AppConfig):
    name = "webapp.guidance"
    default_auto_field = "django.db.models.BigAutoField"
