from django.urls import path

from webapp.guidance import views

app_name = "guidance"

urlpatterns = [
    path("", views.table, name="table"),
    path("<str:dx>/", views.diagnosis, name="diagnosis"),
    path("versions/<int:pk>/review/", views.review, name="review"),
]
