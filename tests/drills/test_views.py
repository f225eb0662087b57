"""Pages of drills: practice, quizzes, the timed mock interview, review, progress, export,
accounts with carry-over, and predict runs on the stage."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from lessons.drills.bank import Drill, default_bank
from lessons.drills.models import Attempt, QuizRound, ReviewCard
from lessons.drills.progress import answer_key
from webapp.models import LiveCluster

pytestmark = pytest.mark.django_db


def _right_answer(drill: Drill, page: str) -> dict[str, object]:
    """The form data of a right answer to the question on `page` (phase one for two-phase kinds)."""
    seed = re.search(r'name="seed" value="(\d+)"', page)
    data: dict[str, object] = {"seed": seed.group(1) if seed else "0"}
    position = re.search(r'name="position" value="(\d+)"', page)
    if position:
        data["position"] = position.group(1)
    if drill.kind == "pick":
        data["choice"] = drill.body["answer"]
    elif drill.kind == "predict":
        key = answer_key(drill).key
        data["choice" if drill.question_type == "choice" else "number"] = key
    elif drill.kind == "number":
        data["number"] = drill.number_instance(int(str(data["seed"])))["key"]
    elif drill.kind == "order":
        data |= {f"pos-{i}": str(i + 1) for i in range(len(drill.items))}
    elif drill.kind == "explain":
        data |= {"phase": "grade", "text": "my answer", "point": list(range(len(drill.points)))}
    elif drill.kind == "design":
        model = drill.body["model"]
        data |= {name: str(model[name]) for name in model}
        data |= {"phase": "grade", "match": ["topics", "keys", "groups", "failure"]}
    return data


def test_practising_a_drill_grades_it_and_schedules_its_review(client: Client) -> None:
    drill = default_bank().get("tool-task-queue")
    assert drill is not None
    page = client.get(f"/drills/{drill.id}/").content.decode()
    assert drill.title in page and 'name="choice"' in page
    response = client.post(f"/drills/{drill.id}/", {"seed": "1", "choice": "kafka"})
    assert response.status_code == 302
    feedback = client.get(response["Location"]).content.decode()
    assert "Not quite" in feedback and "A task queue: SQS or RabbitMQ" in feedback
    card = ReviewCard.objects.get(drill_id=drill.id)
    assert card.due <= timezone.now() + timedelta(minutes=10)  # a miss comes back soon
    assert card.lapses == 1

    client.post(f"/drills/{drill.id}/", {"seed": "1", "choice": "queue"})
    card.refresh_from_db()
    assert card.reviews == 2
    assert Attempt.objects.filter(drill_id=drill.id).count() == 2


def test_a_bad_answer_is_explained_and_nothing_is_saved(client: Client) -> None:
    response = client.post("/drills/lag-from-offsets/", {"seed": "3", "number": "lots"})
    assert response.status_code == 400
    assert "is not a number" in response.content.decode()
    assert Attempt.objects.count() == 0 and ReviewCard.objects.count() == 0


def test_explain_drills_are_self_graded_against_the_model_answer(client: Client) -> None:
    first = client.post(
        "/drills/how-ordering-works/", {"seed": "1", "text": "Per partition, by key."}
    )
    page = first.content.decode()
    assert first.status_code == 200 and "Which points did you hit?" in page
    assert "Per partition, by key." in page
    second = client.post(
        "/drills/how-ordering-works/",
        {"seed": "1", "phase": "grade", "text": "Per partition, by key.", "point": ["0", "2"]},
    )
    attempt = Attempt.objects.get()
    assert second.status_code == 302 and attempt.score == pytest.approx(2 / 3)
    assert attempt.answer["text"] == "Per partition, by key."


def test_a_quiz_gives_feedback_per_item_and_mastery_per_topic(client: Client) -> None:
    bank = default_bank()
    response = client.post(
        "/drills/quiz/", {"mode": "quiz", "length": "5", "topic": ["queues", "sizing"]}
    )
    assert response.status_code == 302
    round_ = QuizRound.objects.get()
    assert len(round_.drill_ids) == 5
    assert {bank.get(i).topic for i in round_.drill_ids} == {"queues", "sizing"}  # type: ignore[union-attr]
    url = response["Location"]
    for position, drill_id in enumerate(round_.drill_ids):
        drill = bank.get(drill_id)
        assert drill is not None
        page = client.get(url).content.decode()
        assert f"question {position + 1} of 5" in page
        data = _right_answer(drill, page)
        answered = client.post(url, data)
        assert answered.status_code == 302, answered.content.decode()[:500]
        feedback = client.get(answered["Location"]).content.decode()
        assert 'id="verdict"' in feedback  # immediate feedback
    results = client.get(client.get(url)["Location"]).content.decode()
    assert "Mastery by topic" in results
    assert "Kafka vs queues and Redis" in results and "Back-of-envelope sizing" in results
    assert "5 of 5 answered · overall 100%" in results
    assert QuizRound.objects.get().finished_at is not None


def test_a_quiz_refuses_unknown_topics_and_lengths(client: Client) -> None:
    assert (
        client.post("/drills/quiz/", {"mode": "quiz", "length": "5", "topic": ["nope"]}).status_code
        == 400
    )
    assert client.post("/drills/quiz/", {"mode": "quiz", "length": "999"}).status_code == 400
    assert QuizRound.objects.count() == 0


def test_a_mock_interview_has_a_clock_no_hints_and_a_debrief(client: Client) -> None:
    url = client.post("/drills/quiz/", {"mode": "mock", "length": "4"})["Location"]
    round_ = QuizRound.objects.get()
    assert round_.mode == "mock" and round_.time_limit_s == 4 * 90
    kinds = {default_bank().get(i).kind for i in round_.drill_ids}  # type: ignore[union-attr]
    assert len(kinds) == 4  # a mix
    page = client.get(url).content.decode()
    assert 'id="mock-clock"' in page and "no hints" in page
    first = default_bank().get(round_.drill_ids[0])
    assert first is not None
    answered = client.post(url, _right_answer(first, page))
    assert answered["Location"] == url  # straight on, no feedback
    assert 'id="verdict"' not in client.get(url).content.decode()
    # the clock runs out: the round ends and unanswered questions count as zero
    QuizRound.objects.filter(pk=round_.pk).update(started_at=timezone.now() - timedelta(minutes=7))
    ended = client.get(url)
    assert ended.status_code == 302 and ended["Location"].endswith("/results/")
    debrief = client.get(ended["Location"]).content.decode()
    assert "Mock interview debrief" in debrief and "1 of 4 answered" in debrief
    assert debrief.count("not answered") == 3
    assert escape(first.explanation) in debrief  # the explanation comes in the debrief


def test_missed_drills_come_back_on_the_review_page(client: Client) -> None:
    client.post("/drills/tool-task-queue/", {"seed": "1", "choice": "kafka"})  # a miss
    client.post("/drills/tool-bidirectional/", {"seed": "1", "choice": "websocket"})  # right
    page = client.get("/drills/review/").content.decode()
    assert 'id="nothing-due"' in page  # the miss is due in a minute, not yet
    ReviewCard.objects.filter(drill_id="tool-task-queue").update(
        due=timezone.now() - timedelta(seconds=1)
    )
    page = client.get("/drills/review/").content.decode()
    due_list = page.split('id="due-list"')[1].split("</ul>")[0]
    assert "Resizing uploaded images" in due_list and "Live cursor sharing" not in due_list
    started = client.post("/drills/quiz/", {"mode": "review"})
    review = QuizRound.objects.get(mode="review")
    assert review.drill_ids == ["tool-task-queue"] and started.status_code == 302


def test_signing_up_carries_anonymous_progress_over_and_export_has_it(client: Client) -> None:
    client.post("/drills/tool-task-queue/", {"seed": "1", "choice": "queue"})
    client.post("/drills/lag-from-offsets/", {"seed": "3", "number": "1"})
    client.post("/drills/quiz/", {"mode": "quiz", "length": "3"})
    response = client.post(
        "/accounts/signup/",
        {"username": "ada", "password1": "kafka-dojo-pass-42", "password2": "kafka-dojo-pass-42"},
    )
    assert response.status_code == 302
    user = User.objects.get(username="ada")
    assert Attempt.objects.filter(user=user).count() == 2
    assert ReviewCard.objects.filter(user=user).count() == 2
    assert QuizRound.objects.filter(user=user).count() == 1
    assert "2 answers (1 right)" in client.get("/progress/").content.decode()

    exported = json.loads(client.get("/progress/export/?format=json").content)
    assert [a["drill"] for a in exported["attempts"]] == ["tool-task-queue", "lag-from-offsets"]
    assert len(exported["review_cards"]) == 2
    rows = list(
        csv.reader(io.StringIO(client.get("/progress/export/?format=csv").content.decode()))
    )
    assert rows[0][:3] == ["time", "drill", "title"] and len(rows) == 3

    client.post("/accounts/logout/")
    assert "0 answers" in client.get("/progress/").content.decode()  # anonymous again: nothing
    client.post("/drills/tool-bidirectional/", {"seed": "1", "choice": "websocket"})
    client.post("/accounts/login/", {"username": "ada", "password": "kafka-dojo-pass-42"})
    assert Attempt.objects.filter(user=user).count() == 3  # logging in carries over too
    other = Client()
    assert json.loads(other.get("/progress/export/?format=json").content)["attempts"] == []


def test_a_weak_signup_is_refused_and_nothing_moves(client: Client) -> None:
    client.post("/drills/tool-task-queue/", {"seed": "1", "choice": "queue"})
    response = client.post(
        "/accounts/signup/", {"username": "bo", "password1": "1", "password2": "2"}
    )
    assert response.status_code == 400
    assert User.objects.count() == 0 and Attempt.objects.filter(user__isnull=True).count() == 1


def test_a_predict_run_plays_on_the_stage_with_a_what_if_beside_it(client: Client) -> None:
    page = client.get("/drills/two-of-three-down-acks-all/run/?whatif=0").content.decode()
    assert 'id="run-original"' in page and 'id="run-whatif"' in page
    assert page.count("the deciding moment") >= 1
    assert "A different outcome with acks=1." in page
    assert "<svg" in page
    assert client.get("/drills/two-of-three-down-acks-all/run/?whatif=9").status_code == 404
    assert client.get("/drills/tool-task-queue/run/").status_code == 404


def test_a_predict_run_opens_as_a_sandbox_at_the_deciding_moment(client: Client) -> None:
    response = client.post("/drills/two-of-three-down-acks-all/sandbox/")
    assert response.status_code == 302
    sandbox = LiveCluster.objects.get()
    moment = answer_key(default_bank().get("two-of-three-down-acks-all")).computed["moment_ms"]  # type: ignore[arg-type]
    assert response["Location"] == f"/sandbox/{sandbox.id}/timeline/?t={moment}"
    kinds = list(sandbox.commands.order_by("seq").values_list("kind", flat=True))
    assert kinds[:2] == ["create_topic", "set_acks"] and "stop_broker" in kinds
    assert client.get(response["Location"]).status_code == 200


def test_a_design_drill_builds_its_model_on_the_stage(client: Client) -> None:
    response = client.post("/drills/design-ad-clicks/build/")
    sandbox = LiveCluster.objects.get()
    assert response["Location"] == f"/sandbox/{sandbox.id}/"
    kinds = list(sandbox.commands.values_list("kind", flat=True))
    assert kinds.count("add_group_consumer") == 3


def test_logging_in_keeps_the_accounts_own_review_card_over_an_anonymous_one(
    client: Client,
) -> None:
    user = User.objects.create_user("cy", password="kafka-dojo-pass-42")
    account = Client()
    account.force_login(user)
    account.post("/drills/tool-task-queue/", {"seed": "1", "choice": "queue"})
    account_card = ReviewCard.objects.get(user=user)
    client.post("/drills/tool-task-queue/", {"seed": "1", "choice": "kafka"})  # anonymous miss
    client.post("/accounts/login/", {"username": "cy", "password": "kafka-dojo-pass-42"})
    cards = ReviewCard.objects.filter(drill_id="tool-task-queue")
    assert list(cards) == [account_card]  # one card per learner and drill: the account's
    assert Attempt.objects.filter(user=user).count() == 2  # both attempts are the account's


def test_a_lesson_page_lists_its_drills(client: Client) -> None:
    page = client.get("/lessons/replication-isr/").content.decode()
    for drill in default_bank().for_lesson("replication-isr"):
        assert f'href="/drills/{drill.id}/"' in page


def test_the_lesson_drills_tag_lists_a_lessons_drills() -> None:
    from django.template import Context, Template

    html = Template('{% load drills_tags %}{% lesson_drills "replication-isr" %}').render(Context())
    linked = default_bank().for_lesson("replication-isr")
    assert linked
    for drill in linked:
        assert f'href="/drills/{drill.id}/"' in html
    empty = Template('{% load drills_tags %}{% lesson_drills "no-such" %}').render(Context())
    assert "No drills for this lesson yet." in empty


def test_signing_up_also_claims_the_anonymous_lesson_progress(client: Client) -> None:
    from lessons import progress as lesson_progress
    from lessons.models import LessonProgress

    client.get("/drills/")  # a session
    session = client.session
    token = lesson_progress.learner_token(session)
    session.save()
    LessonProgress.objects.create(learner=token, lesson_id="replication-isr", step=2)
    client.post(
        "/accounts/signup/",
        {"username": "di", "password1": "kafka-dojo-pass-42", "password2": "kafka-dojo-pass-42"},
    )
    row = LessonProgress.objects.get()
    assert row.user == User.objects.get(username="di")
    exported = json.loads(client.get("/progress/export/?format=json").content)
    assert exported["lessons"] == [
        {
            "lesson": "replication-isr",
            "step": 2,
            "completed_at": None,
            "started_at": row.started_at.isoformat(),
        }
    ]
