from django.urls import path

from webapp import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("sandbox/", views.sandbox_mine, name="sandbox-mine"),
    path("sandbox/new/", views.sandbox_new, name="sandbox-new"),
    path("sandbox/<str:cluster_id>/", views.sandbox_detail, name="sandbox-detail"),
    path("sandbox/<str:cluster_id>/produce/", views.sandbox_produce, name="sandbox-produce"),
]
