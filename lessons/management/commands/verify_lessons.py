"""`python manage.py verify_lessons`: every lesson's automated walk-through, a line each."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.catalogue import LessonContentError, load_catalogue
from lessons.walkthrough import walk_through


class Command(BaseCommand):
    help = (
        "Load every lesson, then perform each step through the command table, run the clock "
        "until its goal holds and check every claim and predict answer against the engine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lesson_ids", nargs="*", help="only these lessons (default: all)")
        parser.add_argument(
            "--lessons-dir", help="a folder of lesson files (default: lessons/content/lessons)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options.get("lessons_dir"):
                catalogue = load_catalogue(Path(options["lessons_dir"]))
            else:
                catalogue = load_catalogue()
        except LessonContentError as error:
            raise CommandError(str(error)) from error
        wanted = options["lesson_ids"]
        unknown = [lesson_id for lesson_id in wanted if catalogue.lesson(lesson_id) is None]
        if unknown:
            raise CommandError(f"no lesson {unknown[0]!r}")
        lessons = [x for x in catalogue.lessons if not wanted or x.id in wanted]
        passed = failed = 0
        for lesson in lessons:
            started = time.perf_counter()
            result = walk_through(lesson)
            elapsed = time.perf_counter() - started
            self.stdout.write(f"{result.line()} [{elapsed:.1f} s]")
            if result.passed:
                passed += 1
            else:
                failed += 1
        self.stdout.write(f"{passed} passed, {failed} failed")
        if failed:
            raise CommandError(f"{failed} lessons failed their walk-through")
