"""Roles shown as enforced: each page of a room offers exactly the commands its viewer's role
may send (services.offered_commands), and the server accepts exactly those; a learner's stage
has no node buttons, their participation controls follow what they did."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.web.test_workshops import (
    ack_and_html,
    frame_of,
    html_with,
    joined,
    logged_kinds,
    make_instructor,
    room_of_two,
    room_socket,
    signed_in,
)
from webapp.workshops import services
from webapp.workshops.models import Participant, Workshop

NODE_BUTTON = 'class="stage-action"'


def _set_mode(workshop: Workshop, mode: str) -> None:
    workshop.participation = mode
    workshop.save(update_fields=["participation"])


@pytest.mark.django_db
def test_each_role_is_offered_its_commands_and_the_server_takes_no_other() -> None:
    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="t")
    joined(workshop, "Ada")
    ada = Participant.objects.get(name="Ada")
    learner = services.Viewer("learner", ada.pk)
    instructor = services.offered_commands(workshop, "instructor")
    assert {"stop_broker", "start_broker", "produce", "pause"} <= set(instructor)
    assert "console" not in instructor
    assert services.offered_commands(workshop, "presenter") == {}
    assert services.offered_commands(workshop, "learner", ada) == {}  # watching

    _set_mode(workshop, Workshop.Participation.CONSUMERS)
    assert list(services.offered_commands(workshop, "learner", ada)) == ["add_group_consumer"]
    with pytest.raises(services.Forbidden):  # nothing to remove yet
        services.cluster_command_for(workshop, learner, "participate", {"action": "remove"})
    added = services.cluster_command_for(workshop, learner, "participate", {})
    assert added["type"] == "add_group_consumer" and added["group"] == workshop.group_id
    services.participant_consumer_set(participant_id=ada.pk, app_id=3)
    ada.refresh_from_db()
    assert list(services.offered_commands(workshop, "learner", ada)) == ["app_control"]
    with pytest.raises(services.Forbidden):  # one consumer each
        services.cluster_command_for(workshop, learner, "participate", {})
    removed = services.cluster_command_for(
        workshop, learner, "participate", {"action": "remove", "app_id": 1}
    )
    assert removed == {"type": "app_control", "app_id": 3, "action": "stop"}  # their own app

    _set_mode(workshop, Workshop.Participation.PRODUCERS)
    assert list(services.offered_commands(workshop, "learner", ada)) == ["produce"]
    for role, kind in (("instructor", "console"), ("presenter", "stop_broker")):
        with pytest.raises(services.Forbidden):
            services.cluster_command_for(
                workshop, services.Viewer(role), kind, {"line": "kafka-topics.sh --list"}
            )


@pytest.mark.django_db
def test_the_learners_page_offers_only_their_part_and_the_control_view_the_instructors() -> None:
    teacher = make_instructor()
    workshop = services.workshop_create(owner=teacher, title="t")
    ada = joined(workshop, "Ada")
    page = ada.get(f"/w/{workshop.code}/").content.decode()
    assert 'id="ws-participate"' in page and 'data-role="watching"' in page
    assert 'id="stage-action"' not in page  # no way to send a node button's command
    assert 'data-command="pause"' not in page  # nor the room's clock
    assert "Add my consumer" not in page and "Produce</button>" not in page

    _set_mode(workshop, Workshop.Participation.CONSUMERS)
    page = ada.get(f"/w/{workshop.code}/").content.decode()
    assert "Add my consumer" in page and "Remove my consumer" not in page
    row = Participant.objects.get(name="Ada")
    services.participant_consumer_set(participant_id=row.pk, app_id=1)
    page = ada.get(f"/w/{workshop.code}/").content.decode()
    assert "Remove my consumer" in page and "Add my consumer" not in page

    _set_mode(workshop, Workshop.Participation.PRODUCERS)
    page = ada.get(f"/w/{workshop.code}/").content.decode()
    assert "Produce</button>" in page and row.producer_key in page

    control = signed_in(teacher).get(f"/workshops/{workshop.code}/control/").content.decode()
    assert 'id="stage-action"' in control and 'id="ws-participate"' not in control
    assert 'data-command="pause"' in control and 'data-command="speed"' in control
    assert 'value="console"' not in control


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_learners_stage_has_no_node_buttons_the_instructors_has_them(
    host_registry: Any,
) -> None:
    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    learner = await room_socket(workshop, ada)
    # The whole state each socket gets on joining (through its own channel).
    assert 'data-command="stop_broker"' in await html_with(instructor, 'id="stage"')
    first = await html_with(learner, 'id="stage"')
    assert "Broker 1" in first and NODE_BUTTON not in first
    # A version the fan-out passes on to both: the broker's buttons change, the learner's none.
    await instructor.send_json_to({"type": "stop_broker", "seq": 1, "broker_id": 1})
    ack, shown = await ack_and_html(instructor, 'data-command="start_')
    assert ack["seq"] == 1 and 'data-command="start_broker"' in shown
    later = await html_with(learner, 'is-stopped" data-broker="1"')
    assert NODE_BUTTON not in later
    for socket in (instructor, learner):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_add_my_consumer_becomes_remove_my_consumer_and_back(host_registry: Any) -> None:
    workshop, teacher, ada, _ = await sync_to_async(room_of_two)()
    instructor = await room_socket(workshop, teacher)
    learner = await room_socket(workshop, ada)
    await instructor.send_json_to({"type": "participation", "seq": 1, "mode": "consumers"})
    await frame_of(instructor, "ack")
    assert 'id="ws-participate"' in await html_with(learner, "Add my consumer")

    await learner.send_json_to({"type": "participate", "seq": 1, "action": "add"})
    ack, controls = await ack_and_html(learner, "Remove my consumer")
    app_id = ack["app_id"]
    assert 'id="ws-participate"' in controls and "Add my consumer" not in controls

    await learner.send_json_to({"type": "participate", "seq": 2, "action": "remove"})
    ack, controls = await ack_and_html(learner, "Add my consumer")
    assert ack["seq"] == 2 and "Remove my consumer" not in controls
    assert "app_control" in await sync_to_async(logged_kinds)(workshop.cluster_id)
    row = await Participant.objects.aget(name="Ada")
    assert row.consumer_app_id == "" and app_id
    for socket in (instructor, learner):
        await socket.disconnect()


@pytest.mark.asyncio
async def test_the_fan_out_cuts_a_version_once_for_all_the_sockets_of_a_role() -> None:
    import functools

    from channels.layers import get_channel_layer

    from tests.web.test_fanout import FakeProtocol, FakeSink, fake_handle_reply, parse_frame
    from webapp.engine_host import fanout
    from webapp.workshops.stage import stage_view

    cuts = 0
    learner_view = stage_view([])  # a learner is offered no node button's command
    assert learner_view is not None
    assert stage_view(services.offered_commands(Workshop(), "instructor")) is None

    def counted(html: str) -> str:
        nonlocal cuts
        cuts += 1
        assert learner_view is not None
        return learner_view(html)

    layer = get_channel_layer()
    group = "dojo.cluster.role-view-test"
    learners = [FakeProtocol() for _ in range(20)]
    instructor = FakeProtocol()
    for i, protocol in enumerate(learners):
        scope = {fanout.SERVER_SEND_KEY: functools.partial(fake_handle_reply, protocol)}
        await fanout.subscribe(group, FakeSink(f"learner-{i}", 1), scope, counted)
    scope = {fanout.SERVER_SEND_KEY: functools.partial(fake_handle_reply, instructor)}
    await fanout.subscribe(group, FakeSink("instructor", 1), scope)
    stage = (
        '<g class="broker" data-broker="1"><text>Broker 1</text>'
        '<g class="stage-action" role="button" tabindex="0" aria-label="Kill broker 1" '
        'data-command="stop_broker" data-field="broker_id" data-value="1"><rect/>'
        "<text>kill</text></g></g>"
    )
    await layer.group_send(group, {"type": "cluster.state", "version": 2, "base": 1, "html": stage})
    for _ in range(100):
        if instructor.transport.written:
            break
        await asyncio.sleep(0.01)
    assert cuts == 1  # once for the version, whatever the number of learners
    frames = [p.transport.written[0] for p in learners]
    assert all(frame is frames[0] for frame in frames)  # and one frame for all of them
    assert (
        parse_frame(frames[0])[1] == '<g class="broker" data-broker="1"><text>Broker 1</text></g>'
    )
    assert parse_frame(instructor.transport.written[0])[1] == stage
    for i in range(20):
        await fanout.unsubscribe(group, FakeSink(f"learner-{i}", 1))
    await fanout.unsubscribe(group, FakeSink("instructor", 1))
