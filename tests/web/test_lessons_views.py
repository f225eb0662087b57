"""Lesson pages without a browser: the catalogue with each learner's progress, a lesson's own
live cluster built from its scenario, answers committed once, restart, and progress kept when
the learner signs in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import escape

from lessons.catalogue import get_catalogue
from lessons.models import LessonProgress
from lessons.walkthrough import compile_lesson
from webapp.models import ClusterCommand, LiveCluster


@pytest.mark.django_db
def test_the_home_page_links_to_the_catalogue_which_lists_every_lesson(client: Client) -> None:
    assert 'href="/lessons/"' in client.get("/").content.decode()
    response = client.get("/lessons/")
    assert response.status_code == 200
    text = response.content.decode()
    for lesson in get_catalogue().lessons:
        assert f'href="/lessons/{lesson.id}/"' in text
        assert escape(lesson.title) in text
    assert text.count("Not started") == len(get_catalogue().lessons)
    assert "What you will be able to say" in text
    assert escape(get_catalogue().lessons[0].interview) in text


@pytest.mark.django_db
def test_opening_a_lesson_builds_its_cluster_from_the_lesson_scenario(client: Client) -> None:
    response = client.get("/lessons/producer-acks/")
    assert response.status_code == 200
    row = LessonProgress.objects.get(lesson_id="producer-acks")
    cluster = LiveCluster.objects.get(pk=row.cluster_id)
    compiled = compile_lesson(get_catalogue().lesson("producer-acks"))
    assert cluster.seed == compiled.scenario.cluster.seed
    commands = list(
        ClusterCommand.objects.filter(cluster=cluster).values_list("payload", flat=True)
    )
    assert commands == compiled.setup_payloads()
    text = response.content.decode()
    assert f'ws-connect="/ws/clusters/{cluster.id}/"' in text
    assert 'id="lesson-goal"' in text and "Show me" in text
    # Opening it again continues on the same cluster.
    client.get("/lessons/producer-acks/")
    assert LiveCluster.objects.count() == 1
    assert client.get("/lessons/no-such-lesson/").status_code == 404


@pytest.mark.django_db
def test_a_prediction_is_committed_once(client: Client) -> None:
    client.get("/lessons/leader-failover/")
    first = client.post(
        "/lessons/leader-failover/answer/", {"step": 0, "kind": "predict", "choice": 1}
    )
    assert first.json() == {"ok": True, "choice": 1, "correct": True}
    second = client.post(
        "/lessons/leader-failover/answer/", {"step": 0, "kind": "predict", "choice": 0}
    )
    assert second.json()["choice"] == 1
    assert (
        client.post(
            "/lessons/leader-failover/answer/", {"step": 0, "kind": "predict", "choice": 9}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/lessons/leader-failover/answer/", {"step": 1, "kind": "predict", "choice": 0}
        ).status_code
        == 400
    )  # step 2 asks nothing


@pytest.mark.django_db
def test_restart_starts_the_lesson_over_on_a_new_cluster(client: Client) -> None:
    client.get("/lessons/leader-failover/")
    client.post("/lessons/leader-failover/answer/", {"step": 0, "kind": "predict", "choice": 1})
    before = LessonProgress.objects.get()
    response = client.post("/lessons/leader-failover/restart/")
    assert response.status_code == 302 and response["Location"] == "/lessons/leader-failover/"
    after = LessonProgress.objects.get()
    assert after.cluster_id != before.cluster_id
    assert after.steps == {} and after.step == 0


@pytest.mark.django_db
def test_an_anonymous_learners_progress_is_kept_when_they_sign_in(client: Client) -> None:
    client.get("/lessons/leader-failover/")
    row = LessonProgress.objects.get()
    assert row.user is None
    user = get_user_model().objects.create_user("ada", password="a-long-passphrase")
    client.force_login(user)
    row.refresh_from_db()
    assert row.user == user
    # From another browser, the account sees the same progress.
    other = Client()
    other.force_login(user)
    text = other.get("/lessons/").content.decode()
    assert "Step 0 of 2" in text
