"""Run every engine-backed drill and check the author's expectation against the engine.

    python manage.py verify_drills            # one line per drill, then "N passed, N failed"
    python manage.py verify_drills --only ID  # just these drills

Each computed key is stored in the answer-key cache (by the drill's content hash), so serving
a drill never waits on a run. Exits 1 when any drill fails (a wrong author or a broken drill).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lessons.drills import keys
from lessons.drills.bank import DrillError, load_bank
from lessons.drills.progress import store_key


class Command(BaseCommand):
    help = "Run every predict drill's scenario and compare the author's answer with the engine's."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--only", nargs="*", default=None, help="drill ids to verify")
        parser.add_argument(
            "--dir", default=None, help="a folder of drill files (default: the bank)"
        )
        parser.add_argument(
            "--no-store", action="store_true", help="do not write the answer-key cache"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bank = load_bank(Path(options["dir"]) if options["dir"] else None)
        except DrillError as error:
            raise CommandError(f"the drill bank does not load: {error}") from None
        drills = [d for d in bank if d.engine_backed]
        if options["only"]:
            unknown = set(options["only"]) - {d.id for d in drills}
            if unknown:
                raise CommandError(f"no predict drill called {', '.join(sorted(unknown))}")
            drills = [d for d in drills if d.id in options["only"]]
        passed = failed = 0
        started = time.perf_counter()
        for drill in drills:
            try:
                computed = keys.compute_key(drill)
            except keys.KeyError_ as error:
                failed += 1
                self.stdout.write(f"FAIL {drill.id}: {error}")
                continue
            if keys.matches_expected(drill, computed):
                passed += 1
                if not options["no_store"]:
                    store_key(drill, computed)
                moment = f", moment at {computed.moment_ms} ms" if computed.moment_ms else ""
                self.stdout.write(
                    f"ok   {drill.id}: {computed.key!r}"
                    f" (observed {computed.observed!r}{moment}; {computed.run_ms:.0f} ms)"
                )
            else:
                failed += 1
                self.stdout.write(
                    f"FAIL {drill.id}: the author expects {drill.body['expected']!r}, the engine"
                    f" gives {computed.key!r} (observed {computed.observed!r})"
                )
        elapsed = time.perf_counter() - started
        self.stdout.write(f"verified {len(drills)} engine-backed drills in {elapsed:.1f} s")
        self.stdout.write(f"{passed} passed, {failed} failed")
        if failed:
            raise SystemExit(1)
