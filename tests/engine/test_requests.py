"""The request catalogue (engine.common.requests) and the request handlers that serve it."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import engine.common.requests as requests_package
from engine import Cluster
from engine.common.records import TopicPartition
from engine.common.requests import ApiKey, Request, Response, error_code
from engine.common.requests.fetch import (
    FollowerFetchRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)

# The APIs issue #10 names, as Kafka's ApiKeys spell them (the follower fetch is FETCH).
NAMED_APIS = {
    "Metadata", "Produce", "Fetch", "ListOffsets", "OffsetForLeaderEpoch", "FindCoordinator",
    "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit", "OffsetFetch",
    "DescribeGroups", "ListGroups", "DeleteGroups", "OffsetDelete", "InitProducerId",
    "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn", "WriteTxnMarkers",
    "CreateTopics", "DeleteTopics", "CreatePartitions", "DescribeConfigs",
    "IncrementalAlterConfigs", "ElectLeaders", "DescribeCluster", "DescribeQuorum",
    # issue #17: partition reassignment (KIP-455)
    "AlterPartitionReassignments", "ListPartitionReassignments",
}  # fmt: skip


def catalogue() -> list[type[Any]]:
    classes: list[type[Any]] = []
    for info in pkgutil.iter_modules(requests_package.__path__):
        module = importlib.import_module(f"engine.common.requests.{info.name}")
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
    return classes


def camel(key: ApiKey) -> str:
    return "".join(part.capitalize() for part in key.name.split("_"))


def test_every_named_api_has_a_request_and_a_response_class() -> None:
    classes = {cls.__name__: cls for cls in catalogue()}
    assert {camel(key) for key in ApiKey} == NAMED_APIS
    for name in NAMED_APIS:
        request, response = classes[f"{name}Request"], classes[f"{name}Response"]
        assert issubclass(request, Request) and issubclass(response, Response)
        assert camel(request.api_key) == name
    assert FollowerFetchRequest.api_key is ApiKey.FETCH


def test_requests_and_responses_are_frozen_dataclasses() -> None:
    for cls in catalogue():
        if issubclass(cls, (Request, Response)) and cls not in (Request, Response):
            assert dataclasses.is_dataclass(cls), cls
            assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]


def test_every_api_is_served_by_exactly_one_handler_table() -> None:
    cluster = Cluster(brokers=1, controllers=1)
    broker = set(cluster.broker_by_id(1).apis.handlers)
    controller = set(cluster.controller_apis.handlers)
    assert broker.isdisjoint(controller)
    assert broker | controller == set(ApiKey)


def test_errors_travel_by_name_with_kafkas_codes() -> None:
    response = ListOffsetsResponse(TopicPartition("t", 0), "NOT_LEADER_OR_FOLLOWER", -1)
    assert response.error_code == 6
    assert error_code("") == 0
    assert error_code("OFFSET_OUT_OF_RANGE") == 1
    assert error_code("COORDINATOR_NOT_AVAILABLE") == 15


def test_messages_on_the_network_are_named_after_the_requests_they_carry() -> None:
    cluster = Cluster(brokers=3, seed=3)
    seen: set[str] = set()
    send = cluster.network.send

    def spy(source: Any, destination: Any, kind: str, deliver: Any) -> bool:
        seen.add(kind)
        return send(source, destination, kind, deliver)

    cluster.network.send = spy  # type: ignore[method-assign]
    cluster.create_topic("orders", partitions=2, replication_factor=3)
    producer = cluster.producer({"transactional.id": "t1"})
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("orders", value=b"v", partition=0)
    producer.commit_transaction()
    consumer = cluster.consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    for _ in range(20):
        consumer.poll(200)
    consumer.commit()
    consumer.close()
    requests = {
        "metadata", "produce", "fetch", "find_coordinator", "join_group", "sync_group",
        "heartbeat", "leave_group", "offset_commit", "init_producer_id",
        "add_partitions_to_txn", "end_txn", "write_txn_markers", "replica_fetch",
    }  # fmt: skip
    assert requests <= seen
    assert {f"{kind}_response" for kind in requests} <= seen


def test_offset_for_leader_epoch_answers_the_end_of_an_epoch_from_the_leader() -> None:
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("orders", partitions=1, replication_factor=3)
    producer = cluster.producer({"acks": "all"})
    for i in range(3):
        producer.send("orders", value=f"v{i}".encode(), partition=0)
    producer.flush()
    tp = TopicPartition("orders", 0)
    first_leader = cluster.describe_topic("orders").partitions[0].leader
    cluster.stop_broker(first_leader)
    cluster.advance(10000)
    leader = cluster.describe_topic("orders").partitions[0].leader
    assert leader != first_leader
    producer.send("orders", value=b"later", partition=0)
    producer.flush()

    def ask(broker_id: int, current: int, epoch: int) -> Any:
        answers: list[Any] = []
        cluster.broker_by_id(broker_id).handle_request(
            OffsetForLeaderEpochRequest(tp, current, epoch), answers.append
        )
        return answers[0]

    now = cluster.describe_topic("orders").partitions[0].leader_epoch
    assert ask(leader, now, 0) == OffsetForLeaderEpochResponse(tp, "", 0, 3)
    assert ask(leader, now, now) == OffsetForLeaderEpochResponse(tp, "", now, 4)
    assert ask(leader, now - 1, 0).error == "FENCED_LEADER_EPOCH"
    follower = next(b for b in (1, 2, 3) if b not in (leader, first_leader))
    assert ask(follower, now, 0).error == "NOT_LEADER_OR_FOLLOWER"
