"""Keeps a workshop's shared cluster out of the sandbox URLs: its id may show on the stage, but
only the room's own socket and views (with their role checks) reach it.

Sync and async capable: a sync-only middleware would make Django run the async sandbox views
(console, produce) in a throwaway thread loop, which breaks the engine hosts they start."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.decorators import sync_and_async_middleware

from webapp.workshops import services

SANDBOX_PATH = re.compile(r"^/sandbox/(?P<cluster_id>[^/]+)/")
REFUSAL = "This cluster belongs to a workshop room."


def _cluster_in_path(request: HttpRequest) -> str | None:
    match = SANDBOX_PATH.match(request.path)
    return match.group("cluster_id") if match else None


@sync_and_async_middleware
def workshop_cluster_guard(get_response: Callable[[HttpRequest], Any]) -> Any:
    if iscoroutinefunction(get_response):

        async def guard_async(request: HttpRequest) -> HttpResponse:
            cluster_id = _cluster_in_path(request)
            if cluster_id and await sync_to_async(services.is_workshop_cluster)(cluster_id):
                return HttpResponseForbidden(REFUSAL)
            response: Awaitable[HttpResponse] = get_response(request)
            return await response

        return guard_async

    def guard(request: HttpRequest) -> HttpResponse:
        cluster_id = _cluster_in_path(request)
        if cluster_id and services.is_workshop_cluster(cluster_id):
            return HttpResponseForbidden(REFUSAL)
        response: HttpResponse = get_response(request)
        return response

    return guard
