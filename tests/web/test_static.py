"""Static files through WhiteNoise (webapp/static_files.py) in the embedded default: served
from static/ as it is, with nothing built, on the async and the sync request paths."""

from __future__ import annotations

import pytest
from django.test import AsyncClient, Client

from tests.web.support import ROOT

HTMX = ROOT / "static" / "vendor" / "htmx-2.0.11.min.js"


def _body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_htmx_is_served_from_our_own_static_files() -> None:
    response = Client().get("/static/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=" in response["Cache-Control"]
    assert _body(response) == HTMX.read_bytes()
    assert Client().get("/static/vendor/no-such-file.js").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_static_files_on_the_async_path_with_conditional_requests() -> None:
    client = AsyncClient()
    first = await client.get("/static/dojo/dojo.css")
    assert first.status_code == 200
    etag = first["ETag"]
    again = await client.get("/static/dojo/dojo.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    page = await client.get("/")  # not a static path: the app answers as before
    assert page.status_code == 200
    assert "/static/vendor/htmx-2.0.11.min.js" in page.content.decode()
