from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "webapp.cases"
    label = "cases"

    def ready(self):
        from webapp.cases import receivers  # noqa: F401  (connects signal receivers)
