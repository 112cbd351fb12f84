from django.contrib import admin
from django.urls import include, path

from webapp.healthz import healthz_view
from webapp.metrics import metrics_view

urlpatterns = [
    path("", include("webapp.pages.urls")),
    path("accounts/", include("webapp.accounts.urls")),
    path("cases/", include("webapp.cases.urls")),
    # Re-runs keep the addresses they had when they were part of cases.
    path("cases/", include("webapp.reruns.urls")),
    path("guidance/", include("webapp.guidance.urls")),
    path("audit/", include("webapp.audit.urls")),
    path("", include("webapp.modelops.urls")),
    path("api/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
]

handler404 = "webapp.error_views.not_found"
handler500 = "webapp.error_views.server_error"
