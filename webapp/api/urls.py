from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from webapp.accounts import api as accounts
from webapp.cases import api as cases
from webapp.guidance import api as guidance
from webapp.modelops import api as modelops
from webapp.reruns import api as reruns

app_name = "api"

urlpatterns = [
    path("auth/token/", accounts.TokenView.as_view(), name="token"),
    path("cases/", cases.CaseListCreateView.as_view(), name="case-list"),
    path("cases/<uuid:public_id>/", cases.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<uuid:public_id>/image/", cases.CaseImageView.as_view(), name="case-image"),
    path("cases/<uuid:public_id>/heatmap/", cases.CaseHeatMapView.as_view(), name="case-heatmap"),
    path("cases/<uuid:public_id>/export/", cases.CaseExportView.as_view(), name="case-export"),
    path("cases/<uuid:public_id>/fhir/", cases.CaseFhirView.as_view(), name="case-fhir"),
    path("cases/<uuid:public_id>/reviews/", cases.CaseReviewsView.as_view(), name="case-reviews"),
    path("review-queue/", cases.ReviewQueueView.as_view(), name="review-queue"),
    path("lesions/", cases.LesionListView.as_view(), name="lesion-list"),
    path("guidance/", guidance.GuidanceListView.as_view(), name="guidance-list"),
    path(
        "guidance/<int:pk>/review/", guidance.GuidanceReviewView.as_view(), name="guidance-review"
    ),
    path("lesions/<uuid:public_id>/", cases.LesionDetailView.as_view(), name="lesion-detail"),
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
    path("models/<str:name>/reruns/", reruns.ModelVersionRerunView.as_view(), name="model-rerun"),
    path("model-imports/", modelops.ModelImportCreateView.as_view(), name="import-list"),
    path(
        "model-imports/<uuid:public_id>/",
        modelops.ModelImportDetailView.as_view(),
        name="import-detail",
    ),
    path("reruns/<uuid:public_id>/", reruns.RerunDetailView.as_view(), name="rerun-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
