from django.urls import path

from webapp.modelops.consumers import TrainingRunConsumer

websocket_urlpatterns = [
    path("ws/training-runs/<uuid:public_id>/", TrainingRunConsumer.as_asgi()),
]
