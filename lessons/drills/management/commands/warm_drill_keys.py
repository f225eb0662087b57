"""Compute every predict drill's answer key (and its what-ifs') not cached yet (by content hash).

`./scripts/run` calls this at start, so serving a drill never waits on a scenario run. Unlike
verify_drills it does not compare with the author's expectation and never fails the start for
a wrong author; it reports drills whose scenario would not run.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from lessons.drills import keys
from lessons.drills.bank import default_bank
from lessons.drills.models import AnswerKey
from lessons.drills.progress import store_key, stored_key, what_if_key


class Command(BaseCommand):
    help = "Cache the computed answer key of every predict drill that has none yet."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        computed = broken = 0
        for drill in default_bank():
            if not drill.engine_backed:
                continue
            variants = [None, *range(len(drill.body.get("what_if", []) or []))]
            for index in variants:
                if stored_key(drill, index) is not None:
                    continue
                try:
                    if index is None:
                        store_key(drill, keys.compute_key(drill))
                    else:
                        what_if_key(drill, index)  # computes and stores it
                    computed += 1
                except keys.KeyError_ as error:
                    broken += 1
                    self.stderr.write(f"{drill.id}: {error}")
        current = {d.content_hash for d in default_bank() if d.engine_backed}
        stale = [
            row.pk
            for row in AnswerKey.objects.only("content_hash")
            if row.content_hash.split(":")[0] not in current
        ]
        AnswerKey.objects.filter(pk__in=stale).delete()
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"answer keys: {computed} computed, {broken} broken, {len(stale)} stale removed"
            f" ({elapsed:.1f} s)"
        )
