from django.urls import path

from webapp.consumers import ClusterConsumer

websocket_urlpatterns = [
    path("ws/clusters/<str:cluster_id>/", ClusterConsumer.as_asgi(), name="ws-cluster"),
]
