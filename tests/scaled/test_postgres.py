"""The app on PostgreSQL: the core flows' own tests pass on it (the migrations are applied by
pytest-django to make its test database, and by tests/scaled/test_scaled_mode.py).

The flows' tests (workshop rooms with roles, polls, fork and export; the command log's
durability) run again in a pytest of their own whose DATABASE_URL names the
throwaway PostgreSQL cluster, so every query they make goes to PostgreSQL through psycopg.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.web.support import ROOT

pytestmark = pytest.mark.scaled

CORE_FLOW_TESTS = [
    "tests/web/test_workshops.py",
    "tests/web/test_durability.py",
]


def _env(database_url: str, tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
    return env | {"DATABASE_URL": database_url, "KAFKA_DOJO_DATA_DIR": tmp}


def test_the_core_flows_pass_on_postgresql(postgres_url: str, tmp_path: object) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path}/inner",
            "--reuse-db",  # keeps test_dojo, the proof below that the run used PostgreSQL
            *CORE_FLOW_TESTS,
        ],
        cwd=ROOT,
        env=_env(postgres_url, str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and " failed" not in done.stdout, tail
    test_db = postgres_url.rsplit("/", 1)[0] + "/test_dojo"
    with psycopg.connect(test_db.replace("postgres://", "postgresql://", 1)) as db:
        tables = {row[0] for row in db.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert "workshops_workshop" in tables
