"""Keeps a workshop's shared cluster out of the sandbox URLs: its id may show on the stage, but
only the room's own socket and views (with their role checks) reach it."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from webapp.workshops import services

SANDBOX_PATH = re.compile(r"^/sandbox/(?P<cluster_id>[^/]+)/")


class WorkshopClusterGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = SANDBOX_PATH.match(request.path)
        if match and services.is_workshop_cluster(match.group("cluster_id")):
            return HttpResponseForbidden("This cluster belongs to a workshop room.")
        return self.get_response(request)
