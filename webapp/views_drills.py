"""Pages of drills, quizzes, mock interviews, spaced review and progress.

The logic lives in lessons/drills/ (bank, grading, answers, keys, quiz, scheduler, progress);
the stage side of predict and design drills in webapp/drills_stage.py.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lessons.drills import answers, keys, quiz
from lessons.drills.bank import KINDS, TOPICS, Drill, default_bank
from lessons.drills.grading import DESIGN_FIELDS, AnswerError, Grade
from lessons.drills.models import Attempt, QuizRound
from lessons.drills.progress import (
    Learner,
    answer_key,
    due_cards,
    export_csv,
    export_rows,
    overall_mastery,
    record_attempt,
    upcoming_cards,
    what_if_key,
    what_if_scenario,
)
from webapp import drills_stage
from webapp.views import _session_key

logger = logging.getLogger(__name__)

QUIZ_LENGTHS = (3, 5, 10, 15, 20)
MOCK_LENGTHS = (4, 6, 8)
MOCK_SECONDS_PER_ITEM = 90
DELIVERY_CHOICES = ("at-most-once", "at-least-once", "exactly-once")
DESIGN_LABELS = {
    "topics": "Topics",
    "keys": "Keys (what you partition by)",
    "partitions": "Partition count (main topic)",
    "groups": "Consumer groups",
    "delivery": "Delivery guarantee",
    "failure": "Durability and failure handling",
}


def learner_of(request: HttpRequest) -> Learner:
    user = request.user
    if user.is_authenticated:
        return Learner(user_id=user.pk, session_key=_session_key(request))
    return Learner(user_id=None, session_key=_session_key(request))


def _drill(drill_id: str) -> Drill:
    drill = default_bank().get(drill_id)
    if drill is None:
        raise Http404(f"There is no drill called {drill_id!r}.")
    return drill


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


# -- presenting a drill ----------------------------------------------------------------------------


def lesson_url(drill: Drill) -> str:
    """The page of the lesson that teaches the drill ("" when there is no such page)."""
    if not drill.lesson:
        return ""
    try:
        return reverse("lesson-page", args=[drill.lesson])
    except NoReverseMatch:
        return ""


def question_context(drill: Drill, seed: int) -> dict[str, Any]:
    """Everything the question form needs (number drills: this seed's parameters)."""
    context: dict[str, Any] = {"drill": drill, "seed": seed, "lesson_url": lesson_url(drill)}
    if drill.kind == "number":
        context["instance"] = drill.number_instance(seed)
    if drill.kind == "order":
        shown = list(enumerate(drill.items))
        random.Random(seed).shuffle(shown)
        if [i for i, _ in shown] == list(range(len(shown))):
            shown.reverse()  # never show the answer as the starting order
        context["order_items"] = shown
        context["positions"] = range(1, len(drill.items) + 1)
    if drill.kind == "design":
        context["design_fields"] = [(name, DESIGN_LABELS[name]) for name in DESIGN_FIELDS]
        context["delivery_choices"] = DELIVERY_CHOICES
    return context


def _selfgrade_context(drill: Drill, data: dict[str, list[str]], seed: int) -> dict[str, Any]:
    """Phase two of explain and design drills: the learner's answer beside the model's."""
    if drill.kind == "explain":
        text = (data.get("text") or [""])[0].strip()
        if not text:
            raise AnswerError("write your answer first: it is what you grade yourself on")
        return {"drill": drill, "seed": seed, "text": text, "points": list(enumerate(drill.points))}
    fields = {name: (data.get(name) or [""])[0].strip() for name in DESIGN_FIELDS}
    missing = [DESIGN_LABELS[n] for n, v in fields.items() if not v]
    if missing:
        raise AnswerError("fill in every part of the design (missing: " + ", ".join(missing) + ")")
    model = drill.body["model"]
    rows = [
        {
            "name": name,
            "label": DESIGN_LABELS[name],
            "mine": fields[name],
            "model": model[name],
            "self": name in ("topics", "keys", "groups", "failure"),
        }
        for name in DESIGN_FIELDS
    ]
    low, high = drill.body["partitions_range"]
    return {
        "drill": drill,
        "seed": seed,
        "rows": rows,
        "fields": fields,
        "partitions_range": (low, high),
        "points": drill.points,
    }


def key_text(drill: Drill, key: Any, instance: dict[str, Any] | None) -> str:
    """The right answer in words."""
    if drill.kind in ("pick", "predict") and drill.choices:
        target = drill.body["answer"] if drill.kind == "pick" else key
        return next((c.text for c in drill.choices if c.id == target), str(target))
    if drill.kind == "predict":
        return f"{key:g}" if isinstance(key, float) else str(key)
    if drill.kind == "number" and instance:
        return f"{instance['key']:,.4g} {instance['unit']}".strip()
    if drill.kind == "order":
        return " → ".join(drill.items)
    return ""


def feedback_context(drill: Drill, attempt: Attempt, *, show_key: bool = True) -> dict[str, Any]:
    context: dict[str, Any] = {
        "drill": drill,
        "attempt": attempt,
        "show_key": show_key,
        "lesson_url": lesson_url(drill),
    }
    instance = None
    if drill.kind == "number":
        instance = drill.number_instance(int(attempt.answer.get("seed", 0)))
        context["instance"] = instance
    key = None
    if drill.kind == "predict":
        stored = answer_key(drill)
        key = stored.key
        context["computed"] = stored.computed
        context["what_ifs"] = list(enumerate(drill.body.get("what_if", []) or []))
    context["key_text"] = key_text(drill, key, instance)
    if drill.kind == "pick" or (drill.kind == "predict" and drill.choices):
        chosen = attempt.answer.get("choice")
        context["chosen_text"] = next((c.text for c in drill.choices if c.id == chosen), chosen)
    if drill.kind == "order":
        context["given_order"] = attempt.answer.get("order", [])
    if drill.kind == "explain":
        context["points"] = [
            (p, i in set(attempt.answer.get("points", []))) for i, p in enumerate(drill.points)
        ]
        context["model_answer"] = drill.body["model_answer"]
    if drill.kind == "design":
        context["model"] = [(DESIGN_LABELS[n], drill.body["model"][n]) for n in DESIGN_FIELDS]
        context["mine"] = attempt.answer.get("design", {})
        context["can_build"] = "build" in drill.body
    return context


def _grade(
    request: HttpRequest, drill: Drill, seed: int
) -> tuple[str, Grade | None, dict[str, Any]]:
    """("selfgrade", None, ctx) for phase one of a two-phase drill; ("graded", grade, answer);
    or ("error", None, {"message": ...})."""
    data = {k: request.POST.getlist(k) for k in request.POST}
    phase = request.POST.get("phase", "answer")
    try:
        if answers.two_phase(drill) and phase == "answer":
            return "selfgrade", None, _selfgrade_context(drill, data, seed)
        key = answer_key(drill).key if drill.kind == "predict" else None
        grade, answer = answers.grade(drill, data, key=key, seed=seed)
    except AnswerError as error:
        return "error", None, {"message": str(error)}
    except keys.KeyError_ as error:
        logger.error("drill %s has no answer key: %s", drill.id, error)
        return "error", None, {"message": "This drill's answer could not be computed."}
    return "graded", grade, answer


def _seed_from(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("seed", ""))
    except ValueError:
        return _fresh_seed()


# -- the bank and single drills ------------------------------------------------------------------


@require_GET
def drills_index(request: HttpRequest) -> HttpResponse:
    bank = default_bank()
    topic = request.GET.get("topic", "")
    kind = request.GET.get("kind", "")
    shown = [d for d in bank if (not topic or d.topic == topic) and (not kind or d.kind == kind)]
    learner = learner_of(request)
    latest: dict[str, Attempt] = {}
    for attempt in Attempt.objects.filter(learner.q()).order_by("created_at", "id"):
        latest[attempt.drill_id] = attempt
    grouped: dict[str, list[tuple[Drill, Attempt | None]]] = {}
    for drill in shown:
        grouped.setdefault(drill.topic, []).append((drill, latest.get(drill.id)))
    counts = {t: len(ds) for t, ds in bank.by_topic().items()}
    context = {
        "groups": [(t, TOPICS[t], grouped[t]) for t in TOPICS if t in grouped],
        "topics": [(t, TOPICS[t], counts.get(t, 0)) for t in TOPICS if counts.get(t)],
        "kinds": KINDS,
        "topic": topic,
        "kind": kind,
        "total": len(bank),
        "latest": latest,
        "due_count": due_cards(learner).count(),
        "quiz_lengths": QUIZ_LENGTHS,
        "mock_lengths": MOCK_LENGTHS,
        "mock_minutes_per_item": MOCK_SECONDS_PER_ITEM / 60,
    }
    return render(request, "drills/index.html", context)


@require_http_methods(["GET", "POST"])
def drill_practice(request: HttpRequest, drill_id: str) -> HttpResponse:
    """One drill on its own: answer, (self-grade), feedback; it feeds spaced review."""
    drill = _drill(drill_id)
    if request.method == "GET":
        context = question_context(drill, _fresh_seed())
        return render(request, "drills/practice.html", context)
    seed = _seed_from(request)
    outcome, grade, payload = _grade(request, drill, seed)
    if outcome == "selfgrade":
        return render(request, "drills/practice.html", {**payload, "phase": "selfgrade"})
    if outcome == "error" or grade is None:
        context = question_context(drill, seed) | {"error": payload["message"]}
        return render(request, "drills/practice.html", context, status=400)
    attempt = record_attempt(learner_of(request), drill, grade, payload)
    return redirect(reverse("drill-attempt", args=[drill.id, attempt.pk]))


@require_GET
def drill_attempt(request: HttpRequest, drill_id: str, attempt_id: int) -> HttpResponse:
    drill = _drill(drill_id)
    attempt = get_object_or_404(
        Attempt.objects.filter(learner_of(request).q()), pk=attempt_id, drill_id=drill.id
    )
    return render(
        request, "drills/practice.html", {**feedback_context(drill, attempt), "phase": "feedback"}
    )


# -- quizzes and mock interviews -----------------------------------------------------------------


def _round_for(request: HttpRequest, round_id: str) -> QuizRound:
    return get_object_or_404(QuizRound.objects.filter(learner_of(request).q()), pk=round_id)


@require_POST
def quiz_new(request: HttpRequest) -> HttpResponse:
    bank = default_bank()
    mode = request.POST.get("mode", "quiz")
    seed = _fresh_seed()
    learner = learner_of(request)
    if mode == "mock":
        try:
            length = int(request.POST.get("length", "6"))
        except ValueError:
            return HttpResponseBadRequest("The length must be a number.")
        if length not in MOCK_LENGTHS:
            return HttpResponseBadRequest("Pick one of the offered lengths.")
        drills = quiz.mock_mix(bank, length=length, seed=seed)
        time_limit = length * MOCK_SECONDS_PER_ITEM
        topics: list[str] = []
    elif mode == "review":
        due = [c.drill_id for c in due_cards(learner)]
        drills = [d for d in (bank.get(i) for i in due) if d][:20]
        if not drills:
            messages.info(request, "Nothing is due for review right now.")
            return redirect("drills-review")
        time_limit = None
        topics = []
    else:
        mode = "quiz"
        topics = [t for t in request.POST.getlist("topic") if t]
        unknown = [t for t in topics if t not in TOPICS]
        if unknown:
            return HttpResponseBadRequest(f"Unknown topic(s): {', '.join(unknown)}")
        try:
            length = int(request.POST.get("length", "5"))
        except ValueError:
            return HttpResponseBadRequest("The length must be a number.")
        if length not in QUIZ_LENGTHS:
            return HttpResponseBadRequest("Pick one of the offered lengths.")
        kinds = [k for k in request.POST.getlist("kind") if k]
        if any(k not in KINDS for k in kinds):
            return HttpResponseBadRequest("Unknown drill kind.")
        due = [c.drill_id for c in due_cards(learner)]
        drills = quiz.pick_drills(
            bank, topics=topics, length=length, seed=seed, first=due, kinds=kinds or None
        )
        time_limit = None
    if not drills:
        messages.error(request, "No drills match those topics.")
        return redirect("drills-index")
    rng = random.Random(seed)
    round_ = QuizRound.objects.create(
        **learner.fields(),
        mode=mode,
        topics=topics,
        drill_ids=[d.id for d in drills],
        seeds=[rng.randrange(2**31) for _ in drills],
        time_limit_s=time_limit,
    )
    return redirect("quiz-item", round_id=round_.pk)


def _deadline(round_: QuizRound) -> Any:
    if not round_.time_limit_s:
        return None
    return round_.started_at + timedelta(seconds=round_.time_limit_s)


def _finish(round_: QuizRound) -> None:
    if round_.finished_at is None:
        round_.finished_at = timezone.now()
        round_.save(update_fields=["finished_at"])


@require_http_methods(["GET", "POST"])
def quiz_item(request: HttpRequest, round_id: str) -> HttpResponse:
    round_ = _round_for(request, round_id)
    bank = default_bank()
    done = round_.attempts.count()
    total = len(round_.drill_ids)
    deadline = _deadline(round_)
    mock = round_.mode == QuizRound.Mode.MOCK
    base: dict[str, Any] = {
        "round": round_,
        "total": total,
        "mock": mock,
        "deadline_iso": deadline.isoformat() if deadline else "",
        "seconds_left": int((deadline - timezone.now()).total_seconds()) if deadline else None,
    }
    show = request.GET.get("show", "")
    if request.method == "GET" and show.isdigit() and not mock:
        # Immediate feedback on the item just answered (the last one too, before the results).
        previous = round_.attempts.filter(position=int(show)).first()
        shown_drill = bank.get(previous.drill_id) if previous else None
        if previous is not None and shown_drill is not None:
            context = base | feedback_context(shown_drill, previous)
            return render(request, "drills/quiz.html", context | {"phase": "feedback"})
    out_of_time = deadline is not None and timezone.now() >= deadline
    if round_.finished_at or done >= total or out_of_time:
        _finish(round_)
        return redirect("quiz-results", round_id=round_.pk)
    position = done
    drill = bank.get(round_.drill_ids[position])
    if drill is None:  # the bank changed under a running round
        raise Http404("This quiz refers to a drill that no longer exists.")
    seed = int(round_.seeds[position])
    base |= {"position": position, "number": position + 1}
    if request.method == "GET":
        return render(request, "drills/quiz.html", base | question_context(drill, seed))
    if int(request.POST.get("position", "-1")) != position:
        messages.info(request, "That answer was for another question; here is the current one.")
        return redirect("quiz-item", round_id=round_.pk)
    outcome, grade, payload = _grade(request, drill, seed)
    if outcome == "selfgrade":
        return render(request, "drills/quiz.html", base | payload | {"phase": "selfgrade"})
    if outcome == "error" or grade is None:
        context = base | question_context(drill, seed) | {"error": payload["message"]}
        return render(request, "drills/quiz.html", context, status=400)
    record_attempt(learner_of(request), drill, grade, payload, quiz=round_, position=position)
    if base["mock"]:
        return redirect("quiz-item", round_id=round_.pk)
    return redirect(reverse("quiz-item", args=[round_.pk]) + f"?show={position}")


@require_POST
def quiz_finish(request: HttpRequest, round_id: str) -> HttpResponse:
    round_ = _round_for(request, round_id)
    _finish(round_)
    return redirect("quiz-results", round_id=round_.pk)


@require_GET
def quiz_results(request: HttpRequest, round_id: str) -> HttpResponse:
    round_ = _round_for(request, round_id)
    bank = default_bank()
    attempts = {a.position: a for a in round_.attempts.all()}
    rows = []
    scored: list[tuple[str, float]] = []
    for position, drill_id in enumerate(round_.drill_ids):
        drill = bank.get(drill_id)
        if drill is None:
            continue
        attempt = attempts.get(position)
        scored.append((drill.topic, attempt.score if attempt else 0.0))
        row: dict[str, Any] = {"position": position + 1, "drill": drill, "attempt": attempt}
        if attempt is not None:
            row["feedback"] = feedback_context(drill, attempt)
        rows.append(row)
    answered = [a for a in attempts.values()]
    total_score = sum(s for _, s in scored)
    elapsed = None
    if round_.finished_at:
        elapsed = int((round_.finished_at - round_.started_at).total_seconds())
    context = {
        "round": round_,
        "rows": rows,
        "mastery": quiz.mastery(scored),
        "answered": len(answered),
        "total": len(round_.drill_ids),
        "score_percent": round(100 * total_score / max(1, len(scored))),
        "mock": round_.mode == QuizRound.Mode.MOCK,
        "elapsed": elapsed,
        "finished": round_.finished_at is not None,
    }
    return render(request, "drills/results.html", context)


# -- spaced review and progress ------------------------------------------------------------------


@require_GET
def review(request: HttpRequest) -> HttpResponse:
    learner = learner_of(request)
    bank = default_bank()

    def rows(cards: Any) -> list[dict[str, Any]]:
        return [{"card": c, "drill": d} for c in cards if (d := bank.get(c.drill_id))]

    context = {
        "due": rows(due_cards(learner)),
        "upcoming": rows(upcoming_cards(learner)[:30]),
        "now": timezone.now(),
    }
    return render(request, "drills/review.html", context)


@require_GET
def progress_page(request: HttpRequest) -> HttpResponse:
    learner = learner_of(request)
    attempts = Attempt.objects.filter(learner.q())
    context = {
        "mastery": overall_mastery(learner),
        "attempts": attempts.count(),
        "correct": attempts.filter(correct=True).count(),
        "drills_tried": attempts.values("drill_id").distinct().count(),
        "total": len(default_bank()),
        "due_count": due_cards(learner).count(),
        "rounds": QuizRound.objects.filter(learner.q()).order_by("-started_at")[:10],
    }
    return render(request, "drills/progress.html", context)


def _lesson_rows(request: HttpRequest) -> list[dict[str, Any]] | None:
    """The learner's lesson progress (the lessons app keeps it by its own session token)."""
    try:
        from lessons import progress as lesson_progress  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # no lesson progress in this build
        return None
    token = request.session.get(getattr(lesson_progress, "SESSION_LEARNER", ""), "")
    user = request.user if request.user.is_authenticated else None
    if not token and user is None:
        return []
    rows = lesson_progress.progress_by_lesson(learner=token or "", user=user)
    return [
        {
            "lesson": lesson_id,
            "step": row.step,
            "completed_at": row.completed_at.isoformat() if row.completed_at else None,
            "started_at": row.started_at.isoformat(),
        }
        for lesson_id, row in sorted(rows.items())
    ]


@require_GET
def progress_export(request: HttpRequest) -> HttpResponse:
    learner = learner_of(request)
    fmt = request.GET.get("format", "json")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        response = HttpResponse(export_csv(learner), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="kafka-dojo-progress-{stamp}.csv"'
        return response
    if fmt != "json":
        return HttpResponseBadRequest("format is json or csv")
    body = json.dumps(
        export_rows(learner, lesson_rows=_lesson_rows(request)), indent=2, default=str
    )
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="kafka-dojo-progress-{stamp}.json"'
    return response


# -- predict drills on the stage, what-ifs, design drills' "build it" ----------------------------


def _variant(drill: Drill, request: HttpRequest) -> tuple[int | None, dict[str, Any] | None]:
    raw = request.GET.get("whatif", request.POST.get("whatif", ""))
    if raw == "":
        return None, None
    options = drill.body.get("what_if", []) or []
    if not raw.isdigit() or int(raw) >= len(options):
        raise Http404("There is no such what-if for this drill.")
    return int(raw), options[int(raw)]


def _side(
    drill: Drill, scenario: dict[str, Any], computed: dict[str, Any], variant: str
) -> dict[str, Any]:
    frames = drills_stage.drill_frames(drill, scenario, computed.get("moment_ms"), variant=variant)
    deciding = next((i for i, f in enumerate(frames) if f.deciding), len(frames) - 1)
    key = computed["key"]
    return {
        "frames": frames,
        "deciding": deciding,
        "key_text": key_text(drill, key, None),
        "observed": computed.get("observed"),
        "moment_ms": computed.get("moment_ms"),
        "outcomes": computed.get("outcomes", []),
    }


@require_GET
def drill_run(request: HttpRequest, drill_id: str) -> HttpResponse:
    """The run behind a predict drill, frame by frame, with the deciding moment marked; with
    ?whatif=N, the run with one setting changed beside it."""
    drill = _drill(drill_id)
    if drill.kind != "predict":
        raise Http404("Only predict drills have a run to watch.")
    stored = answer_key(drill)
    original = _side(drill, dict(drill.body["scenario"]), stored.computed, "original")
    context: dict[str, Any] = {
        "drill": drill,
        "original": original,
        "what_ifs": list(enumerate(drill.body.get("what_if", []) or [])),
    }
    index, change = _variant(drill, request)
    if change is not None and index is not None:
        try:
            computed = what_if_key(drill, index).computed
        except keys.KeyError_ as error:
            context["whatif_error"] = str(error)
        else:
            changed = what_if_scenario(drill, index)
            context["changed"] = _side(drill, changed, computed, f"whatif-{index}")
            context["change"] = change
            context["whatif_index"] = index
            context["same_answer"] = computed["key"] == stored.key
    return render(request, "drills/run.html", context)


@require_POST
def drill_sandbox(request: HttpRequest, drill_id: str) -> HttpResponse:
    """Open the drill's run (or a what-if of it) as a sandbox, scrubbed to the deciding moment."""
    drill = _drill(drill_id)
    if drill.kind != "predict":
        raise Http404("Only predict drills have a run.")
    scenario = dict(drill.body["scenario"])
    moment = answer_key(drill).computed.get("moment_ms")
    index, change = _variant(drill, request)
    if change is not None and index is not None:
        scenario = what_if_scenario(drill, index)
        moment = what_if_key(drill, index).computed.get("moment_ms")
    sandbox = drills_stage.open_sandbox(drill, scenario, session_key=_session_key(request))
    url = reverse("sandbox-timeline", args=[sandbox.id])
    return redirect(f"{url}?t={moment}" if moment is not None else url)


@require_POST
def design_build(request: HttpRequest, drill_id: str) -> HttpResponse:
    """A design drill's model answer, built as a sandbox (its topics, producers and groups)."""
    drill = _drill(drill_id)
    if drill.kind != "design" or "build" not in drill.body:
        raise Http404("This drill has nothing to build.")
    sandbox = drills_stage.open_sandbox(
        drill, drill.body["build"], session_key=_session_key(request)
    )
    return redirect("sandbox-detail", cluster_id=sandbox.id)
