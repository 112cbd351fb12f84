from django.urls import path

from webapp.cases import views

app_name = "cases"

urlpatterns = [
    path("", views.history, name="history"),
    path("upload/", views.upload, name="upload"),
    path("queue/", views.queue, name="queue"),
    path("lesions/", views.lesions, name="lesions"),
    path("lesions/<uuid:public_id>/", views.lesion, name="lesion"),
    path("<uuid:public_id>/", views.results, name="results"),
    path("<uuid:public_id>/state/", views.state, name="state"),
    path("<uuid:public_id>/review/", views.review, name="review"),
    path("<uuid:public_id>/delete/", views.delete, name="delete"),
]
