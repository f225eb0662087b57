"""Test-wide settings.

In CI (the `CI` environment variable is set) Hypothesis runs derandomized: the same examples
every run, so a red build is always reproducible and never a roll of the dice. Locally it
explores new examples each run (set HYPOTHESIS_PROFILE=ci to reproduce CI exactly).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    tmp_path_factory: pytest.TempPathFactory,
    django_db_modify_db_settings_parallel_suffix: None,
) -> None:
    """The test database of SQLite in a file, not Django's default shared-cache in-memory one:
    shared-cache tables lock against each other at once ("database table is locked", no busy
    wait), so the hosts' writes from worker threads failed at random under load; a file waits
    for its lock (`timeout` in webapp/config.py) as the app's own database does."""
    from django.conf import settings as django_settings

    for db in django_settings.DATABASES.values():
        if db["ENGINE"] == "django.db.backends.sqlite3":
            db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
