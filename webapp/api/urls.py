from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from webapp.api import guidance, modelops, views

app_name = "api"

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("cases/", views.CaseListCreateView.as_view(), name="case-list"),
    path("cases/<uuid:public_id>/", views.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<uuid:public_id>/image/", views.CaseImageView.as_view(), name="case-image"),
    path("cases/<uuid:public_id>/heatmap/", views.CaseHeatMapView.as_view(), name="case-heatmap"),
    path("cases/<uuid:public_id>/export/", views.CaseExportView.as_view(), name="case-export"),
    path("cases/<uuid:public_id>/fhir/", views.CaseFhirView.as_view(), name="case-fhir"),
    path("cases/<uuid:public_id>/reviews/", views.CaseReviewsView.as_view(), name="case-reviews"),
    path("review-queue/", views.ReviewQueueView.as_view(), name="review-queue"),
    path("lesions/", views.LesionListView.as_view(), name="lesion-list"),
    path("guidance/", guidance.GuidanceListView.as_view(), name="guidance-list"),
    path(
        "guidance/<int:pk>/review/", guidance.GuidanceReviewView.as_view(), name="guidance-review"
    ),
    path("lesions/<uuid:public_id>/", views.LesionDetailView.as_view(), name="lesion-detail"),
    path("training-runs/", modelops.TrainingRunListCreateView.as_view(), name="run-list"),
    path(
        "training-runs/<uuid:public_id>/",
        modelops.TrainingRunDetailView.as_view(),
        name="run-detail",
    ),
    path(
        "training-runs/<uuid:public_id>/cancel/",
        modelops.TrainingRunCancelView.as_view(),
        name="run-cancel",
    ),
    path("datasets/", modelops.DatasetListCreateView.as_view(), name="dataset-list"),
    path("models/", modelops.ModelVersionListView.as_view(), name="model-list"),
    path("models/active/", modelops.ActiveModelView.as_view(), name="model-active"),
    path("models/rollback/", modelops.ModelRollbackView.as_view(), name="model-rollback"),
    path("models/<str:name>/", modelops.ModelVersionDetailView.as_view(), name="model-detail"),
    path(
        "models/<str:name>/promote/",
        modelops.ModelVersionPromoteView.as_view(),
        name="model-promote",
    ),
    path("models/<str:name>/reruns/", modelops.ModelVersionRerunView.as_view(), name="model-rerun"),
    path("model-imports/", modelops.ModelImportCreateView.as_view(), name="import-list"),
    path(
        "model-imports/<uuid:public_id>/",
        modelops.ModelImportDetailView.as_view(),
        name="import-detail",
    ),
    path("reruns/<uuid:public_id>/", modelops.RerunDetailView.as_view(), name="rerun-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
