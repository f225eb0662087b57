from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.workshops import views

urlpatterns = [
    path(
        "workshops/login/",
        auth_views.LoginView.as_view(template_name="workshops/login.html"),
        name="workshops-login",
    ),
    path("workshops/", views.workshop_list, name="workshops"),
    path("workshops/<str:code>/control/", views.workshop_control, name="workshop-control"),
    path("workshops/<str:code>/present/", views.workshop_present, name="workshop-present"),
    path("workshops/<str:code>/qr.svg", views.workshop_qr, name="workshop-qr"),
    path("workshops/<str:code>/export/", views.export_start, name="workshop-export-start"),
    path(
        "workshops/<str:code>/export/<int:export_id>/",
        views.export_status,
        name="workshop-export",
    ),
    path(
        "workshops/<str:code>/export/<int:export_id>/csv",
        views.export_download,
        name="workshop-export-csv",
    ),
    path("w/", views.join_by_code, name="workshop-join"),
    path("w/<str:code>/", views.workshop_room, name="workshop-room"),
    path("w/<str:code>/fork/", views.workshop_fork, name="workshop-fork"),
]
