from django.urls import path

from webapp.workshops.consumers import WorkshopConsumer

websocket_urlpatterns = [
    path("ws/workshops/<str:code>/", WorkshopConsumer.as_asgi(), name="ws-workshop"),
]
