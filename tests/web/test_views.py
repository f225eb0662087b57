"""Pages: home, a sandbox per visitor, and the produce form without JavaScript."""

from __future__ import annotations

import pytest
from django.test import Client

from webapp.models import ClusterCommand, LiveCluster


@pytest.mark.django_db
def test_home_page_explains_the_app_and_links_to_the_sandbox(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Learn Apache Kafka by doing" in text
    assert 'href="/sandbox/"' in text


@pytest.mark.django_db
def test_a_visitor_gets_one_sandbox_of_their_own(client: Client) -> None:
    first = client.get("/sandbox/")
    assert first.status_code == 302
    again = client.get("/sandbox/")
    assert again["Location"] == first["Location"]
    sandbox = LiveCluster.objects.get()
    assert first["Location"] == f"/sandbox/{sandbox.id}/"
    assert sandbox.brokers == 3
    kinds = list(ClusterCommand.objects.filter(cluster=sandbox).values_list("kind", flat=True))
    assert kinds == ["create_topic", "add_consumer"]

    other_visitor = Client()
    assert other_visitor.get("/sandbox/")["Location"] != first["Location"]
    assert client.post("/sandbox/new/")["Location"] != first["Location"]
    assert LiveCluster.objects.count() == 3


@pytest.mark.django_db
def test_the_sandbox_page_connects_its_socket_with_vendored_htmx(client: Client) -> None:
    location = client.get("/sandbox/")["Location"]
    text = client.get(location).content.decode()
    sandbox_id = location.strip("/").split("/")[-1]
    assert 'hx-ext="ws"' in text
    assert f'ws-connect="/ws/clusters/{sandbox_id}/"' in text
    assert "/static/vendor/htmx-2.0.11.min.js" in text
    assert "/static/vendor/htmx-ext-ws-2.0.4.js" in text
    assert "unpkg" not in text and "cdn" not in text.lower()
    assert 'id="produce-form"' in text


@pytest.mark.django_db
def test_an_unknown_sandbox_is_not_found(client: Client) -> None:
    assert client.get("/sandbox/doesnotexist/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_no_javascript_produce_form_explains_bad_values(client: Client) -> None:
    location = client.get("/sandbox/")["Location"]
    response = client.post(
        location + "produce/", {"topic": "orders", "key": "k", "value": "", "count": "0"}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "Type a value for the record." in text
    assert "Send at least 1 record." in text


def test_vendored_htmx_files_are_in_the_repository() -> None:
    from pathlib import Path

    vendor = Path(__file__).resolve().parents[2] / "static" / "vendor"
    htmx = (vendor / "htmx-2.0.11.min.js").read_text()
    ws = (vendor / "htmx-ext-ws-2.0.4.js").read_text()
    assert "htmx" in htmx and len(htmx) > 40_000
    assert "defineExtension('ws'" in ws


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_no_javascript_produce_form_sends_the_record(host_registry: object) -> None:
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from webapp import services

    sandbox = await sync_to_async(services.sandbox_create)()
    response = await AsyncClient().post(
        f"/sandbox/{sandbox.id}/produce/",
        {"topic": "orders", "key": "no-js", "value": "plain-form", "count": "1"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/sandbox/{sandbox.id}/"
    produced = await sync_to_async(
        lambda: list(
            ClusterCommand.objects.filter(cluster=sandbox, kind="produce").values_list(
                "payload", flat=True
            )
        )
    )()
    assert produced == [
        {"type": "produce", "topic": "orders", "key": "no-js", "value": "plain-form", "count": 1}
    ]
