"""Run every engine-backed drill and check the author's expectation against the engine.

    python manage.py verify_drills            # one line per drill, then "N passed, N failed"
    python manage.py verify_drills --only ID  # just these drills

Predict drills run their scenario (a refused command or a key that differs from the author's
`expected` fails); number drills evaluate their formula on fresh draws; design drills run their
"build it" scenario; every drill has been loaded and validated.

Each computed key is stored in the answer-key cache (by the drill's content hash), so serving
a drill never waits on a run. Exits 1 when any drill fails (a wrong author or a broken drill).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lessons.drills import keys
from lessons.drills.bank import Drill, DrillError, load_bank
from lessons.drills.numbers import FormulaError
from lessons.drills.progress import store_key, what_if_scenario

NUMBER_DRAWS = 20


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
        drills = list(bank)
        if options["only"]:
            unknown = set(options["only"]) - {d.id for d in drills}
            if unknown:
                raise CommandError(f"no drill called {', '.join(sorted(unknown))}")
            drills = [d for d in drills if d.id in options["only"]]
        passed = failed = 0
        started = time.perf_counter()
        for drill in drills:
            problem, line = self._verify(drill, store=not options["no_store"])
            if problem:
                failed += 1
                self.stdout.write(f"FAIL {drill.id}: {problem}")
            else:
                passed += 1
                self.stdout.write(f"ok   {drill.id}: {line}")
        elapsed = time.perf_counter() - started
        engine = sum(d.engine_backed for d in drills)
        self.stdout.write(
            f"verified {len(drills)} drills ({engine} run on the engine) in {elapsed:.1f} s"
        )
        self.stdout.write(f"{passed} passed, {failed} failed")
        if failed:
            raise SystemExit(1)

    def _verify(self, drill: Drill, *, store: bool) -> tuple[str, str]:
        """(problem, "") when the drill fails, else ("", what was checked)."""
        if drill.kind == "predict":
            try:
                computed = keys.compute_key(drill)
            except keys.KeyError_ as error:
                return str(error), ""
            if computed.refused:
                return "the scenario refused " + "; ".join(computed.refused), ""
            if not keys.matches_expected(drill, computed):
                return (
                    f"the author expects {drill.body['expected']!r}, the engine gives"
                    f" {computed.key!r} (observed {computed.observed!r})"
                ), ""
            changed = []
            for index, change in enumerate(drill.body.get("what_if", []) or []):
                try:
                    variant = keys.compute_key(drill, scenario=what_if_scenario(drill, index))
                except keys.KeyError_ as error:
                    return f"what if {change['label']}: {error}", ""
                if variant.refused:
                    return f"what if {change['label']}: refused " + "; ".join(variant.refused), ""
                changed.append(f"{change['label']} -> {variant.key!r}")
                if store:
                    store_key(drill, variant, index)
            if store:
                store_key(drill, computed)
            moment = f", moment at {computed.moment_ms} ms" if computed.moment_ms else ""
            what_ifs = f"; what if {', '.join(changed)}" if changed else ""
            return "", (
                f"{computed.key!r} (observed {computed.observed!r}{moment};"
                f" {computed.run_ms:.0f} ms){what_ifs}"
            )
        if drill.kind == "number":
            for seed in range(NUMBER_DRAWS):
                try:
                    instance = drill.number_instance(seed)
                except FormulaError as error:
                    return f"draw {seed}: {error}", ""
                if not instance["key"] > 0:
                    return f"draw {seed} gives {instance['key']!r}, not a positive answer", ""
            return "", f"formula checked on {NUMBER_DRAWS} fresh draws"
        if drill.kind == "design" and "build" in drill.body:
            refused = keys.run_build(drill)
            if refused:
                return "its build scenario refused " + "; ".join(refused), ""
            return "", "valid; its build scenario runs"
        return "", f"valid ({drill.kind})"
