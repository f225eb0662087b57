"""`{% load drills_tags %}{% lesson_drills "replication-isr" %}`: the drills that practise a
lesson, as a list of links (for a lesson's page or recap)."""

from __future__ import annotations

from typing import Any

from django import template

from lessons.drills.bank import default_bank

register = template.Library()


@register.inclusion_tag("drills/_lesson_drills.html")
def lesson_drills(lesson_id: str) -> dict[str, Any]:
    return {"lesson_id": lesson_id, "drills": default_bank().for_lesson(str(lesson_id))}
