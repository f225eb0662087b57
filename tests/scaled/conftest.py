"""One PostgreSQL and one Redis for the scaled-mode tests (each test makes its own database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scaled.servers import postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A DATABASE_URL of a throwaway PostgreSQL cluster (database `dojo`, user `dojo`)."""
    with postgres_server("dojo") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url
