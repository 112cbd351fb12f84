from django.apps import AppConfig


class RerunsConfig(AppConfig):
    name = "webapp.reruns"
    label = "reruns"
    default_auto_field = "django.db.models.BigAutoField"
