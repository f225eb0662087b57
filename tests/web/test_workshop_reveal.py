"""A drill poll's reveal ends when its play on the room's cluster does: the host tags the play
and says `play_finished`, so the poll is revealed even when whoever asked for the play (the
instructor's socket, its process) is gone by then."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.web.test_workshops import NUMBER_DRILL, frame_of, html_with, room_of_two, room_socket
from webapp.workshops import consumers as room_consumers
from webapp.workshops.models import Poll, Workshop


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_play_that_finishes_after_its_asker_is_gone_still_reveals_the_poll(
    host_registry: Any,
) -> None:
    from webapp.engine_host import store

    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    learner = await room_socket(workshop, ada)
    await instructor.send_json_to(
        {"type": "poll_push", "seq": 1, "source": f"drill:{NUMBER_DRILL}"}
    )
    await frame_of(instructor, "ack")
    room = await Workshop.objects.aget(pk=workshop.pk)
    await instructor.send_json_to({"type": "speed", "seq": 2, "speed": 5})
    await frame_of(instructor, "ack")
    await instructor.send_json_to({"type": "poll_reveal", "seq": 3})
    await html_with(learner, 'data-role="running"')
    for _ in range(200):  # the play is in the log, with the poll's tag
        stored = await sync_to_async(store.cluster_load)(cluster_id=room.cluster_id)
        if stored.playback is not None:
            break
        await asyncio.sleep(0.02)
    assert stored.playback is not None
    poll = await Poll.objects.aget()
    assert stored.playback["tag"] == {"workshop": workshop.pk, "poll": poll.pk}

    # The instructor leaves and nothing waits for the play's answer any more (as when the
    # process that asked restarted): the play goes on on the host alone.
    await instructor.disconnect()
    asked = list(room_consumers._plays)
    assert asked
    for task in asked:
        task.cancel()
    await asyncio.gather(*asked, return_exceptions=True)
    assert (await Poll.objects.aget()).state == Poll.State.RUNNING

    revealed = await html_with(learner, 'data-role="answer"', timeout=60)
    assert "computed by the engine" in revealed
    assert (await Poll.objects.aget()).state == Poll.State.REVEALED
    await learner.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_play_that_outlasts_its_askers_wait_is_revealed_when_it_ends_not_before(
    host_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instructor pauses the room's clock mid-reveal: the asker's wait runs out, but the
    answer stays hidden until the play has really happened on the shared cluster."""
    monkeypatch.setattr(room_consumers, "play_wait_s", lambda commands: 0.2)
    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    learner = await room_socket(workshop, ada)
    await instructor.send_json_to(
        {"type": "poll_push", "seq": 1, "source": f"drill:{NUMBER_DRILL}"}
    )
    await frame_of(instructor, "ack")
    await instructor.send_json_to({"type": "pause", "seq": 2})
    await frame_of(instructor, "ack")
    await instructor.send_json_to({"type": "poll_reveal", "seq": 3})
    await html_with(learner, 'data-role="running"')
    await asyncio.sleep(0.2)
    await asyncio.gather(*list(room_consumers._plays))  # the asker gave up waiting
    await asyncio.sleep(0.5)
    assert (await Poll.objects.aget()).state == Poll.State.RUNNING

    await instructor.send_json_to({"type": "speed", "seq": 4, "speed": 5})
    await frame_of(instructor, "ack")
    await instructor.send_json_to({"type": "resume", "seq": 5})
    await frame_of(instructor, "ack")
    revealed = await html_with(learner, 'data-role="answer"', timeout=60)
    assert "computed by the engine" in revealed
    assert (await Poll.objects.aget()).state == Poll.State.REVEALED
    await instructor.disconnect()
    await learner.disconnect()
