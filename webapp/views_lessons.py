"""Lesson pages: the catalogue, the glossary and a lesson's player docked on its live stage.

A lesson runs on its own live cluster (a `LiveCluster` built from the lesson's scenario),
watched over the same socket as a sandbox. Moving to a step tells the cluster's host which
goal to watch (`host.watch`); the host checks it after every tick and command and sends the
`lesson-goal` fragment with the rest of the state.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from lessons import progress
from lessons.catalogue import BOOTSTRAP_PLACEHOLDER, LEVELS, Lesson, get_catalogue
from lessons.models import LessonProgress
from lessons.scenarios.limits import SPEEDS
from lessons.walkthrough import compile_lesson
from webapp import services
from webapp.engine_host import client as host_client
from webapp.lesson_forms import command_forms
from webapp.models import LiveCluster

LEVEL_TITLES = {
    "fundamentals": "Fundamentals",
    "core": "Core mechanics",
    "advanced": "Advanced",
    "senior": "Senior topics and case studies",
}


def _lesson_or_404(lesson_id: str) -> Lesson:
    lesson = get_catalogue().lesson(lesson_id)
    if lesson is None:
        raise Http404(f"There is no lesson {lesson_id!r}.")
    return lesson


def _learner(request: HttpRequest) -> str:
    return progress.learner_token(request.session)


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key or ""


@require_GET
def lessons_catalogue(request: HttpRequest) -> HttpResponse:
    catalogue = get_catalogue()
    rows = progress.progress_by_lesson(learner=_learner(request), user=request.user)
    entries = []
    for lesson in catalogue.lessons:
        row = rows.get(lesson.id)
        entries.append(
            {
                "lesson": lesson,
                "progress": row,
                "done_steps": min(row.step, lesson.step_count) if row else 0,
                "percent": int(100 * min(row.step, lesson.step_count) / lesson.step_count)
                if row
                else 0,
            }
        )
    sections = [
        {
            "level": level,
            "title": LEVEL_TITLES[level],
            "entries": [e for e in entries if e["lesson"].level == level],
        }
        for level in LEVELS
    ]
    context = {
        "sections": [s for s in sections if s["entries"]],
        "lesson_count": len(catalogue.lessons),
        "total_minutes": sum(x.minutes for x in catalogue.lessons),
        "completed": sum(1 for e in entries if e["progress"] and e["progress"].completed),
    }
    return render(request, "lessons/catalogue.html", context)


@require_GET
def lessons_glossary(request: HttpRequest) -> HttpResponse:
    catalogue = get_catalogue()
    used_by: dict[str, list[Lesson]] = {}
    for lesson in catalogue.lessons:
        for term in lesson.glossary:
            used_by.setdefault(term, []).append(lesson)
    terms = sorted(catalogue.glossary.values(), key=lambda t: t.term.lower())
    return render(
        request,
        "lessons/glossary.html",
        {"terms": [{"term": t, "lessons": used_by.get(t.id, [])} for t in terms]},
    )


def _ensure_run(request: HttpRequest, lesson: Lesson) -> tuple[LessonProgress, LiveCluster]:
    learner = _learner(request)
    row = progress.progress_get(learner=learner, user=request.user, lesson_id=lesson.id)
    cluster = None
    if row is not None and row.cluster_id:
        cluster = LiveCluster.objects.filter(pk=row.cluster_id).first()
    if row is None or cluster is None:
        cluster = services.lesson_cluster_create(
            compiled=compile_lesson(lesson), session_key=_session_key(request)
        )
        row = progress.progress_start(
            learner=learner, user=request.user, lesson_id=lesson.id, cluster_id=cluster.id
        )
    return row, cluster


def bootstrap_servers(cluster: LiveCluster) -> str | None:
    """The cluster's bootstrap.servers while its Kafka listeners are open (from its row: the
    ports its listeners took), else None."""
    from django.conf import settings

    ports = cluster.kafka_listener_ports or {}
    if not cluster.kafka_listeners or not ports:
        return None
    host = getattr(settings, "DOJO_KAFKA_LISTENER_HOST", "127.0.0.1")
    return ",".join(f"{host}:{port}" for _, port in sorted((int(b), p) for b, p in ports.items()))


def _real_client_view(step: Any, bootstrap: str | None) -> dict[str, Any] | None:
    client = step.real_client
    if client is None:
        return None
    return {
        "text": client.text,
        "bootstrap": bootstrap,
        "snippets": [
            {
                "label": snippet.label,
                "language": snippet.language,
                "code": snippet.code.replace(BOOTSTRAP_PLACEHOLDER, bootstrap) if bootstrap else "",
            }
            for snippet in client.snippets
        ],
    }


def _steps_view(
    lesson: Lesson, row: LessonProgress, brokers: int, bootstrap: str | None = None
) -> list[dict[str, Any]]:
    compiled = compile_lesson(lesson)
    views = []
    for step, plan in zip(lesson.steps, compiled.steps, strict=True):
        saved = (row.steps or {}).get(str(step.index), {})
        show_me = [{"at_ms": at_ms, "payload": payload} for at_ms, payload in plan.show_me]
        views.append(
            {
                "step": step,
                "number": step.index + 1,
                "forms": command_forms(step, [p for _, p in plan.show_me], brokers),
                "show_me_json": json.dumps(show_me),
                "real_client": _real_client_view(step, bootstrap),
                "predicted": saved.get("predict"),
                "quizzed": saved.get("quiz"),
                "done_ms": saved.get("done_ms"),
                "predict_choices_json": json.dumps(
                    [c.value for c in step.predict.choices] if step.predict else []
                ),
                "predict_answer_index": next(
                    (
                        i
                        for i, c in enumerate(step.predict.choices)
                        if c.value == step.predict.answer
                    ),
                    -1,
                )
                if step.predict
                else -1,
            }
        )
    return views


@require_GET
def lesson_page(request: HttpRequest, lesson_id: str) -> HttpResponse:
    lesson = _lesson_or_404(lesson_id)
    row, cluster = _ensure_run(request, lesson)
    catalogue = get_catalogue()
    position = catalogue.lessons.index(lesson)
    following = catalogue.lessons[position + 1] if position + 1 < len(catalogue.lessons) else None
    context = {
        "lesson": lesson,
        "progress": row,
        "sandbox": cluster,
        "steps": _steps_view(lesson, row, cluster.brokers, bootstrap_servers(cluster)),
        "current_step": min(row.step, lesson.step_count),
        "speeds": [(f"{s:g}", s == cluster.speed) for s in SPEEDS],
        "broker_ids": range(1, cluster.brokers + 1),
        "controller_ids": range(101, 101 + cluster.controllers),
        "terms": [catalogue.glossary[t] for t in lesson.glossary],
        "next_lesson": following,
        "drills": list(lesson.drills),
    }
    return render(request, "lessons/lesson.html", context)


def _step_from(request: HttpRequest, lesson: Lesson) -> int | None:
    try:
        step = int(request.POST.get("step", ""))
    except ValueError:
        return None
    return step if 0 <= step <= lesson.step_count else None


async def _watch(cluster_id: str, lesson: Lesson, step: int, since: Any) -> dict[str, Any] | None:
    return await host_client.host_request(
        cluster_id, {"type": "host.watch", "lesson": lesson.id, "step": step, "since": since}
    )


@require_POST
async def lesson_step(request: HttpRequest, lesson_id: str) -> HttpResponse:
    """Go to step n (n = the step count: the recap): the host starts watching its goal."""
    lesson = _lesson_or_404(lesson_id)
    step = _step_from(request, lesson)
    if step is None:
        return JsonResponse({"ok": False, "message": "No such step."}, status=400)
    learner = await sync_to_async(_learner)(request)
    user = await request.auser()
    row = await sync_to_async(progress.progress_get)(
        learner=learner, user=user, lesson_id=lesson.id
    )
    if row is None or not row.cluster_id:
        return JsonResponse({"ok": False, "message": "Open the lesson first."}, status=409)
    saved = (row.steps or {}).get(str(step), {}) if step < lesson.step_count else {}
    watch_step = step if step < lesson.step_count else lesson.step_count - 1
    since = (
        saved.get("since")
        if step < lesson.step_count
        else ((row.steps or {}).get(str(watch_step), {}).get("since"))
    )
    frame = await _watch(row.cluster_id, lesson, watch_step, since)
    if frame is None:
        return JsonResponse(
            {"ok": False, "message": "The cluster did not answer in time."}, status=503
        )
    if frame.get("type") != "ack":
        return JsonResponse({"ok": False, "message": frame.get("message", "")}, status=409)
    previous = frame.get("previous") or {}
    if previous.get("lesson") != lesson.id:
        previous = {}
    # Moving on from a step records how far its goal got; the recap records the last one.
    if step >= lesson.step_count:
        previous = frame.get("status") or {}
    await sync_to_async(progress.progress_step_record)(
        row=row,
        step=step,
        since=frame.get("since") if step < lesson.step_count else None,
        previous=previous,
        step_count=lesson.step_count,
    )
    return JsonResponse(
        {
            "ok": True,
            "step": row.step,
            "completed": row.completed,
            "status": frame.get("status"),
        }
    )


@require_POST
def lesson_answer(request: HttpRequest, lesson_id: str) -> HttpResponse:
    """Commit to a predict or quiz answer (before the cluster or the text reveals it)."""
    lesson = _lesson_or_404(lesson_id)
    step = _step_from(request, lesson)
    kind = request.POST.get("kind", "")
    if step is None or step >= lesson.step_count or kind not in ("predict", "quiz"):
        return JsonResponse({"ok": False, "message": "Answer a step's question."}, status=400)
    question = lesson.steps[step].predict if kind == "predict" else lesson.steps[step].quiz
    if question is None:
        return JsonResponse(
            {"ok": False, "message": "This step asks no such question."}, status=400
        )
    try:
        choice = int(request.POST.get("choice", ""))
    except ValueError:
        choice = -1
    if not 0 <= choice < len(question.choices):
        return JsonResponse({"ok": False, "message": "Pick one of the choices."}, status=400)
    row = progress.progress_get(learner=_learner(request), user=request.user, lesson_id=lesson.id)
    if row is None:
        return JsonResponse({"ok": False, "message": "Open the lesson first."}, status=409)
    row = progress.progress_answer(row=row, step=step, kind=kind, choice=choice)
    kept = (row.steps or {}).get(str(step), {}).get(kind)
    if kind == "quiz":
        assert lesson.steps[step].quiz is not None
        correct = kept == lesson.steps[step].quiz.answer
    else:
        predict = lesson.steps[step].predict
        assert predict is not None
        correct = predict.choices[kept].value == predict.answer
    return JsonResponse({"ok": True, "choice": kept, "correct": correct})


@require_POST
def lesson_restart(request: HttpRequest, lesson_id: str) -> HttpResponse:
    """A new cluster from the lesson's scenario and step 1 again."""
    lesson = _lesson_or_404(lesson_id)
    cluster = services.lesson_cluster_create(
        compiled=compile_lesson(lesson), session_key=_session_key(request)
    )
    progress.progress_start(
        learner=_learner(request), user=request.user, lesson_id=lesson.id, cluster_id=cluster.id
    )
    return redirect("lesson-page", lesson_id=lesson.id)
