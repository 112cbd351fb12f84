from django.urls import path

from webapp.cases.consumers import CaseConsumer

websocket_urlpatterns = [
    path("ws/cases/<uuid:public_id>/", CaseConsumer.as_asgi()),
]
