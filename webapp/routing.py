from django.urls import path, re_path

from webapp.consumers import ClusterConsumer, UnknownPathConsumer
from webapp.workshops.routing import websocket_urlpatterns as workshop_websockets

websocket_urlpatterns = [
    path("ws/clusters/<str:cluster_id>/", ClusterConsumer.as_asgi(), name="ws-cluster"),
    *workshop_websockets,
    # Last: every other path is declined cleanly instead of failing the router.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
