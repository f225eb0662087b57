from django.urls import path

from webapp.consumers import ClusterConsumer
from webapp.workshops.routing import websocket_urlpatterns as workshop_websockets

websocket_urlpatterns = [
    path("ws/clusters/<str:cluster_id>/", ClusterConsumer.as_asgi(), name="ws-cluster"),
    *workshop_websockets,
]
