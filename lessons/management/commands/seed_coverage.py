"""`python manage.py seed_coverage`: which checklist items the lessons and drills cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lessons.catalogue import LessonContentError, load_catalogue
from lessons.coverage import ChecklistError, coverage, find_checklist, load_checklist


class Command(BaseCommand):
    help = "List the checklist items each lesson and drill covers, then the items none covers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--checklist", help="path of checklist.json (default: ../shared/seeds)")
        parser.add_argument(
            "--lessons-dir", help="a folder of lesson files (default: lessons/content/lessons)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            path = Path(options["checklist"]) if options.get("checklist") else find_checklist()
            checklist = load_checklist(path)
            if options.get("lessons_dir"):
                catalogue = load_catalogue(Path(options["lessons_dir"]), check_scenarios=False)
            else:
                catalogue = load_catalogue(check_scenarios=False)
            result = coverage(catalogue, checklist)
        except (ChecklistError, LessonContentError) as error:
            raise CommandError(str(error)) from error
        known = set(result.checklist_ids)
        for source, ids in result.by_source.items():
            listed = [item for item in ids if item in known]
            self.stdout.write(f"{source}: {len(listed)} items: {' '.join(listed)}")
        for source, strays in result.unknown.items():
            self.stdout.write(f"{source}: not in the checklist: {' '.join(strays)}")
        missing = result.missing
        self.stdout.write(
            f"covered {len(result.covered)} of {len(result.checklist_ids)} checklist items"
        )
        for item in missing:
            self.stdout.write(item)
        if missing or result.unknown:
            raise CommandError(
                f"{len(missing)} checklist items uncovered, "
                f"{sum(len(v) for v in result.unknown.values())} unknown ids"
            )
