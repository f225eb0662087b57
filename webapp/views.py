"""Pages: home, the visitor's sandbox, and the no-JavaScript produce fallback."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lessons.scenarios import COMMANDS
from lessons.scenarios.commands import errors_text, validate
from lessons.scenarios.limits import SPEEDS
from webapp import services, visitor_limits
from webapp.engine_host import client as host_client
from webapp.engine_host import store
from webapp.forms import ProduceForm, stage_forms
from webapp.models import LiveCluster

SESSION_SANDBOX = "sandbox_id"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key or ""


@require_GET
def sandbox_mine(request: HttpRequest) -> HttpResponse:
    """The visitor's sandbox: the one this session made, or a new one."""
    sandbox_id = request.session.get(SESSION_SANDBOX)
    if sandbox_id and LiveCluster.objects.filter(pk=sandbox_id).exists():
        return redirect("sandbox-detail", cluster_id=sandbox_id)
    return _new_sandbox(request)


@require_POST
def sandbox_new(request: HttpRequest) -> HttpResponse:
    return _new_sandbox(request)


def too_many_sandboxes(message: str) -> HttpResponse:
    return HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")


def _new_sandbox(request: HttpRequest) -> HttpResponse:
    session_key = _session_key(request)
    refusal = visitor_limits.sandbox_refusal(request, session_key)
    if refusal:
        return too_many_sandboxes(refusal)
    sandbox = services.sandbox_create(session_key=session_key)
    request.session[SESSION_SANDBOX] = sandbox.id
    return redirect("sandbox-detail", cluster_id=sandbox.id)


FORKED_FROM_ROOM = "forked_from_room"  # session: {fork's cluster id: {"title", "code"}}
FORKS_REMEMBERED = 10


def _sandbox_page(
    request: HttpRequest,
    sandbox: LiveCluster,
    form: ProduceForm,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    context = {
        "sandbox": sandbox,
        "produce_form": form,
        "speeds": [(f"{s:g}", s == sandbox.speed) for s in SPEEDS],
        "broker_ids": range(1, sandbox.brokers + 1),
        "controller_ids": range(101, 101 + sandbox.controllers),
        "stage_forms": stage_forms(brokers=sandbox.brokers, controllers=sandbox.controllers),
        "page_error": error,
        # A fork taken home from a workshop room (webapp/workshops/views.py) says which.
        "forked_from_room": (request.session.get(FORKED_FROM_ROOM) or {}).get(sandbox.id),
    }
    return render(request, "sandbox/sandbox.html", context, status=status)


@require_GET
def sandbox_detail(request: HttpRequest, cluster_id: str) -> HttpResponse:
    sandbox = get_object_or_404(LiveCluster, pk=cluster_id, kind=LiveCluster.Kind.SANDBOX)
    return _sandbox_page(request, sandbox, ProduceForm(initial={"topic": "orders", "count": 1}))


@require_http_methods(["GET", "POST"])
async def sandbox_console(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """The Kafka CLI console over HTTP: POST a form field `line`, get what the tool prints as
    text/plain (a logged command, so replay, share links and the timeline include it). GET
    answers the panel's tab-completion data as JSON."""
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    if request.method == "GET":
        frame = await host_client.host_request(sandbox.id, {"type": "host.console_complete"})
        if frame is None:
            return JsonResponse({"error": "The cluster did not answer in time."}, status=503)
        return JsonResponse(frame.get("data") or {})
    payload, errors = validate(COMMANDS["console"], {"line": request.POST.get("line")})
    if errors:
        return _plain(errors_text(errors) + "\n", 400)
    frame = await host_client.host_request(
        sandbox.id, {"type": "host.command", "command": payload}, timeout_s=30.0
    )
    if frame is None:
        return _plain("The cluster did not answer in time; try again.\n", 503)
    if frame.get("type") == "error":
        return _plain(str(frame.get("message", "")) + "\n", 409)
    response = _plain(str(frame.get("message", "")), 200)
    state = frame.get("console") or {}
    # JSON-quoted: a header value loses its trailing space ("$ ").
    response["X-Console-Prompt"] = json.dumps(str(state.get("prompt", "$ ")))
    response["X-Console-Running"] = "yes" if state.get("running") else "no"
    return response


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, content_type="text/plain; charset=utf-8", status=status)


@require_POST
async def sandbox_produce(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """Produce without JavaScript: the same form and checks as the WebSocket path."""
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    form = ProduceForm(request.POST)
    render_page = sync_to_async(_sandbox_page)
    if not form.is_valid():
        return await render_page(request, sandbox, form, 400)
    frame = await host_client.host_request(
        sandbox.id, {"type": "host.command", "command": form.to_command()}
    )
    if frame is None:
        return await render_page(request, sandbox, form, 503, "The cluster did not answer in time.")
    if frame.get("type") == "error":
        return await render_page(request, sandbox, form, 409, str(frame.get("message")))
    return redirect("sandbox-detail", cluster_id=sandbox.id)


@require_POST
async def sandbox_kafka(request: HttpRequest, cluster_id: str) -> HttpResponse:
    """Open (or, with action=close, close) the sandbox's Kafka listeners: one loopback port
    per broker for real clients. The choice is stored on the sandbox, so its listeners open
    again, on the same ports where they are free, whenever its host starts."""
    sandbox = await aget_object_or_404(LiveCluster, pk=cluster_id)
    enabled = request.POST.get("action", "open") != "close"
    await sync_to_async(store.cluster_kafka_listeners_save)(cluster_id=sandbox.id, enabled=enabled)
    frame = await host_client.host_request(sandbox.id, {"type": "host.wire", "enabled": enabled})
    if frame is None:
        form = ProduceForm(initial={"topic": "orders", "count": 1})
        render_page = sync_to_async(_sandbox_page)
        return await render_page(request, sandbox, form, 503, "The cluster did not answer in time.")
    if enabled and frame.get("ports"):
        # Stored before the redirect, so the page it loads shows the addresses.
        ports = {int(b): int(p) for b, p in frame["ports"].items()}
        await sync_to_async(store.cluster_kafka_listeners_save)(cluster_id=sandbox.id, ports=ports)
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("sandbox-detail", cluster_id=sandbox.id)
