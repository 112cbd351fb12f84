from django.apps import AppConfig


class ReconcileConfig(AppConfig):
    name = "webapp.reconcile"
    label = "reconcile"
    verbose_name = "Reconciler"
