from django.urls import path

from webapp.modelops import views

app_name = "modelops"

urlpatterns = [
    path("models/", views.card, name="card"),
    path("modelops/", views.dashboard, name="dashboard"),
    path("modelops/datasets/new/", views.dataset_new, name="dataset-new"),
    path("modelops/runs/new/", views.run_new, name="run-new"),
    path("modelops/runs/<uuid:public_id>/", views.run_page, name="run"),
    path("modelops/runs/<uuid:public_id>/state/", views.run_state, name="run-state"),
    path("modelops/runs/<uuid:public_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("modelops/runs/<uuid:public_id>/repeat/", views.run_repeat, name="run-repeat"),
    path(
        "modelops/runs/<uuid:public_id>/files/<slug:name>/",
        views.run_artefact,
        name="run-artefact",
    ),
    path("modelops/rollback/", views.rollback, name="rollback"),
    path("modelops/imports/new/", views.import_new, name="import-new"),
    path("modelops/imports/<uuid:public_id>/", views.import_page, name="import"),
    path("modelops/versions/<str:name>/", views.version_page, name="version"),
    path("modelops/versions/<str:name>/promote/", views.version_promote, name="version-promote"),
    path("modelops/versions/<str:name>/evaluate/", views.version_evaluate, name="version-evaluate"),
    path(
        "modelops/versions/<str:name>/evaluations/<str:evaluation_set>/files/<str:file>/",
        views.version_artefact,
        name="version-artefact",
    ),
]
