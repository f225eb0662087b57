"""Workshop pages: the instructor's list and control view, the projector's presenter view, the
learner's join and room pages, the QR image, fork and the results export."""

from __future__ import annotations

import io
from typing import Any

import segno
from asgiref.sync import async_to_sync
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from lessons.catalogue import get_catalogue
from lessons.scenarios.limits import SPEEDS
from webapp import timeline
from webapp.engine_host.client import flush_host
from webapp.views import FORKED_FROM_ROOM, FORKS_REMEMBERED
from webapp.workshops import services
from webapp.workshops.models import ResultsExport, Workshop
from webapp.workshops.stage import NODE_ACTION_COMMANDS

LOGIN_URL = "workshops-login"
staff_required = staff_member_required(login_url=LOGIN_URL)


def _owned(request: HttpRequest, code: str) -> Workshop:
    workshop = get_object_or_404(Workshop.objects.select_related("cluster"), code=code.upper())
    if workshop.owner_id != request.user.pk:
        raise Http404("No such workshop of yours.")
    return workshop


def _join_url(request: HttpRequest, workshop: Workshop) -> str:
    return request.build_absolute_uri(reverse("workshop-room", args=[workshop.code]))


@staff_required
def workshop_list(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        try:
            workshop = services.workshop_create(
                owner=request.user,
                title=request.POST.get("title", ""),
                lesson_id=request.POST.get("lesson", ""),
            )
        except ValueError as problem:
            error = str(problem)
        else:
            return redirect("workshop-control", code=workshop.code)
    context = {
        "workshops": Workshop.objects.filter(owner=request.user),
        "lessons": get_catalogue().lessons,
        "error": error,
    }
    return render(request, "workshops/list.html", context, status=400 if error else 200)


def _stage_context(
    request: HttpRequest, workshop: Workshop, role: str, participant: Any = None
) -> dict[str, Any]:
    offered = services.offered_commands(workshop, role, participant)
    return {
        "workshop": workshop,
        "speeds": [(f"{s:g}", s == workshop.cluster.speed) for s in SPEEDS],
        "role": role,
        "offered": offered,
        # The stage's node buttons send through this form: only for a role that has some.
        "stage_actions": bool(set(offered) & NODE_ACTION_COMMANDS),
        "join_url": _join_url(request, workshop),
        "ws_url": f"/ws/workshops/{workshop.code}/",
    }


@staff_required
@require_GET
def workshop_control(request: HttpRequest, code: str) -> HttpResponse:
    from webapp.forms import stage_forms

    workshop = _owned(request, code)
    context = _stage_context(request, workshop, "instructor")
    offered = context["offered"]
    context.update(
        {
            "questions": services.lesson_predict_questions(workshop.lesson_id),
            "drills": services.drill_questions(),
            "modes": Workshop.Participation.choices,
            "stage_forms": [
                form
                for form in stage_forms(
                    brokers=workshop.cluster.brokers, controllers=workshop.cluster.controllers
                )
                if all(button.command in offered for button in form.buttons)
            ],
            "exports": workshop.exports.order_by("-created_at")[:3],
        }
    )
    return render(request, "workshops/control.html", context)


@staff_required
@require_GET
def workshop_present(request: HttpRequest, code: str) -> HttpResponse:
    workshop = _owned(request, code)
    return render(request, "workshops/present.html", _stage_context(request, workshop, "presenter"))


@require_GET
def workshop_qr(request: HttpRequest, code: str) -> HttpResponse:
    workshop = get_object_or_404(Workshop, code=code.upper())
    qr = segno.make(_join_url(request, workshop), error="m")
    out = io.BytesIO()
    # A document of its own (XML declaration, the SVG namespace): an <img> shows only that.
    qr.save(out, kind="svg", scale=6, border=2, title=f"Join {workshop.code}")
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")


def _client_key(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def join_by_code(request: HttpRequest) -> HttpResponse:
    code = str(request.GET.get("code", "")).strip().upper()
    if code:
        if not services.join_allowed(_client_key(request)):
            return render(
                request,
                "workshops/join_code.html",
                {"error": "Too many attempts: wait a minute."},
                status=429,
            )
        if Workshop.objects.filter(code=code).exists():
            return redirect("workshop-room", code=code)
        return render(
            request, "workshops/join_code.html", {"error": "No room has that code."}, status=404
        )
    return render(request, "workshops/join_code.html", {})


def workshop_room(request: HttpRequest, code: str) -> HttpResponse:
    workshop = get_object_or_404(Workshop.objects.select_related("cluster"), code=code.upper())
    key = services.session_key_for(workshop)
    participant = services.participant_for_token(workshop, request.session.get(key))
    if request.method == "POST" and participant is None:
        if not services.join_allowed(_client_key(request)):
            return render(
                request,
                "workshops/join.html",
                {"workshop": workshop, "error": "Too many attempts: wait a minute."},
                status=429,
            )
        try:
            participant = services.join(
                workshop=workshop, name=request.POST.get("name", ""), token=None
            )
        except services.JoinRefused as refused:
            return render(
                request,
                "workshops/join.html",
                {"workshop": workshop, "error": str(refused), "name": request.POST.get("name")},
                status=400,
            )
        request.session[key] = participant.token
        return redirect("workshop-room", code=workshop.code)
    if participant is None:
        return render(request, "workshops/join.html", {"workshop": workshop})
    context = _stage_context(request, workshop, "learner", participant)
    context["participant"] = participant
    return render(request, "workshops/room.html", context)


@require_POST
def workshop_fork(request: HttpRequest, code: str) -> HttpResponse:
    """Copy the room's cluster as it is now into a private sandbox of this browser."""
    workshop = get_object_or_404(Workshop.objects.select_related("cluster"), code=code.upper())
    viewer = services.viewer_for(workshop, user=request.user, session=request.session)
    if viewer is None:
        return HttpResponse("Join the room first.", status=403, content_type="text/plain")
    async_to_sync(flush_host)(workshop.cluster_id)
    if not request.session.session_key:
        request.session.save()
    fork = timeline.sandbox_fork(
        cluster_id=workshop.cluster_id,
        at_ms=_logged_end_ms(workshop.cluster_id),
        session_key=request.session.session_key or "",
    )
    request.session["sandbox_id"] = fork.id
    forks = dict(request.session.get(FORKED_FROM_ROOM) or {})
    forks[fork.id] = {"title": workshop.title, "code": workshop.code}
    request.session[FORKED_FROM_ROOM] = dict(list(forks.items())[-FORKS_REMEMBERED:])
    return redirect("sandbox-detail", cluster_id=fork.id)


def _logged_end_ms(cluster_id: str) -> int:
    """Where the room's logged clock stands: the last command's time, plus its length when it
    is the clock's own advance (the time run since the last command is state too)."""
    from webapp.engine_host import store

    stored = store.cluster_load(cluster_id=cluster_id)
    times = timeline.command_times(spec=stored.spec, commands=stored.commands)
    if not times:
        return 0
    last = stored.commands[-1]
    return times[-1] + (int(last.get("ms", 0)) if last.get("type") == "advance" else 0)


@staff_required
@require_POST
def export_start(request: HttpRequest, code: str) -> HttpResponse:
    from webapp.workshops.tasks import export_results

    workshop = _owned(request, code)
    export = ResultsExport.objects.create(workshop=workshop)
    export_results.delay(export.pk)
    return redirect("workshop-export", code=workshop.code, export_id=export.pk)


@staff_required
@require_GET
def export_status(request: HttpRequest, code: str, export_id: int) -> HttpResponse:
    workshop = _owned(request, code)
    export = get_object_or_404(ResultsExport, pk=export_id, workshop=workshop)
    template = (
        "workshops/fragments/export.html"
        if request.headers.get("HX-Request")
        else ("workshops/export.html")
    )
    return render(request, template, {"workshop": workshop, "export": export})


@staff_required
@require_GET
def export_download(request: HttpRequest, code: str, export_id: int) -> HttpResponse:
    workshop = _owned(request, code)
    export = get_object_or_404(ResultsExport, pk=export_id, workshop=workshop)
    if export.status != ResultsExport.Status.DONE:
        return HttpResponseBadRequest("The export is not finished yet.")
    response = HttpResponse(export.csv, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="workshop-{workshop.code}.csv"'
    return response
