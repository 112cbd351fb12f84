from django.urls import path

from webapp.reruns import views

app_name = "reruns"

urlpatterns = [
    path("reruns/new/<str:name>/", views.rerun_new, name="rerun-new"),
    path("reruns/<uuid:public_id>/", views.rerun_page, name="rerun"),
]
