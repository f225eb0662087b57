"""Test-wide settings.

In CI (the `CI` environment variable is set) Hypothesis runs derandomized: the same examples
every run, so a red build is always reproducible and never a roll of the dice. Locally it
explores new examples each run (set HYPOTHESIS_PROFILE=ci to reproduce CI exactly).
"""

import os

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
