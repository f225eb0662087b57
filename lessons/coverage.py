"""Which items of the seeds' checklist the lessons and drills cover (free of Django).

The checklist is data of the shared seeds folder, not of this repository: it is read from
`shared/seeds/checklist.json` beside the repository (`../shared/...`), or from the first
folder above it that holds one, or from the path in `KAFKA_DOJO_CHECKLIST`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lessons.catalogue import DRILLS_DIR, Catalogue

REPO_DIR = Path(__file__).resolve().parent.parent
CHECKLIST_RELATIVE = Path("shared") / "seeds" / "checklist.json"


class ChecklistError(RuntimeError):
    pass


def find_checklist(start: Path = REPO_DIR, env: dict[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    explicit = environ.get("KAFKA_DOJO_CHECKLIST")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ChecklistError(f"KAFKA_DOJO_CHECKLIST points at {path}, which is not a file.")
        return path
    for folder in start.parents:
        candidate = folder / CHECKLIST_RELATIVE
        if candidate.is_file():
            return candidate
    raise ChecklistError(
        f"No checklist found: expected {start.parent / CHECKLIST_RELATIVE} (the shared seeds "
        "folder beside the repository) or KAFKA_DOJO_CHECKLIST set to its path."
    )


def load_checklist(path: Path) -> list[dict[str, Any]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ChecklistError(f"{path}: cannot be read as JSON ({error}).") from error
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise ChecklistError(f"{path}: expected a list of items, each with an id.")
    return items


@dataclass(frozen=True)
class Coverage:
    checklist_ids: tuple[str, ...]
    by_source: dict[str, tuple[str, ...]]  # "lesson <id>" / "drill <id>" -> ids it covers

    @property
    def covered(self) -> set[str]:
        known = set(self.checklist_ids)
        return {item for ids in self.by_source.values() for item in ids if item in known}

    @property
    def missing(self) -> list[str]:
        covered = self.covered
        return [item for item in self.checklist_ids if item not in covered]

    @property
    def unknown(self) -> dict[str, list[str]]:
        """Ids named by a lesson or drill that the checklist does not have."""
        known = set(self.checklist_ids)
        out = {}
        for source, ids in self.by_source.items():
            strays = [item for item in ids if item not in known]
            if strays:
                out[source] = strays
        return out


def drill_covers(drills_dir: Path = DRILLS_DIR) -> dict[str, tuple[str, ...]]:
    """`covers` of every drill file present (the drills' own loader validates the rest)."""
    out: dict[str, tuple[str, ...]] = {}
    if not drills_dir.is_dir():
        return out
    for path in sorted([*drills_dir.glob("*.yaml"), *drills_dir.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise ChecklistError(f"{path}: cannot be read ({error}).") from error
        covers = data.get("covers") if isinstance(data, dict) else None
        if isinstance(covers, list):
            drill_id = str(data.get("id") or path.stem)
            out[f"drill {drill_id}"] = tuple(str(item) for item in covers)
    return out


def coverage(
    catalogue: Catalogue, checklist: list[dict[str, Any]], drills_dir: Path = DRILLS_DIR
) -> Coverage:
    by_source = {f"lesson {lesson.id}": lesson.covers for lesson in catalogue.lessons}
    by_source.update(drill_covers(drills_dir))
    return Coverage(checklist_ids=tuple(str(i["id"]) for i in checklist), by_source=by_source)
