from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import obtain_auth_token

from webapp.api import views

app_name = "api"

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("cases/", views.CaseListCreateView.as_view(), name="case-list"),
    path("cases/<uuid:public_id>/", views.CaseDetailView.as_view(), name="case-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
