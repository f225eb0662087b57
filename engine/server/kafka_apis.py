"""A broker's one request handler (Kafka's `KafkaApis`): every API a broker serves, in one table
from API key to handler, each taking a request object and answering a response object.

Requests arrive over the simulated network (`engine.clients.network_client` for clients,
`engine.server.replica_fetcher` for followers, the transaction markers for the transaction
coordinator); `Broker.handle_request` hands each one here. The handlers delegate to the
components that do the work: the broker's own produce, fetch and list-offsets code, the replica
manager, the group coordinator, the transactional offsets and the transaction coordinator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.common.requests import ApiKey, Reply, Request
from engine.common.requests.fetch import (
    FINAL_EPOCH,
    FetchRequest,
    FetchResponse,
    FollowerFetchRequest,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from engine.common.requests.group import (
    GROUP,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListedGroup,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
)
from engine.common.requests.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from engine.common.requests.produce import (
    ProducePartitionResponse,
    ProduceRequest,
    ProduceResponse,
)
from engine.common.requests.txn import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from engine.common.topic_admin import validate_topic_name
from engine.coordinator.group.classic_group import DEAD
from engine.coordinator.transaction.transaction_markers import write_txn_marker
from engine.errors import KafkaError, protocol_name
from engine.server.consumer_fetch_session import handle_consumer_session_fetch

if TYPE_CHECKING:
    from engine.coordinator.group.group_coordinator import GroupCoordinator
    from engine.coordinator.transaction.transaction_coordinator import TransactionCoordinator
    from engine.server.broker import Broker
    from engine.sim.context import CreateTopic

Handler = Callable[[Any, Reply], None]
# The protocol type of every group here: consumer groups (Kafka's ConsumerProtocol).
CONSUMER_PROTOCOL = "consumer"


class KafkaApis:
    """Dispatches a broker's requests by API key (`handlers` lists every API it serves)."""

    def __init__(
        self,
        broker: Broker,
        create_topic: CreateTopic,
        allocate_producer_id: Callable[[], int],
    ) -> None:
        self.broker = broker
        self.create_topic = create_topic
        self.allocate_producer_id = allocate_producer_id
        # Every API this broker serves. The follower fetch shares FETCH with the consumer's
        # fetch and is told apart by its request type, as Kafka tells it by the replica id.
        self.handlers: dict[ApiKey, Handler] = {
            ApiKey.PRODUCE: self.handle_produce,
            ApiKey.FETCH: self.handle_fetch,
            ApiKey.LIST_OFFSETS: self.handle_list_offsets,
            ApiKey.METADATA: self.handle_metadata,
            ApiKey.OFFSET_COMMIT: self.handle_offset_commit,
            ApiKey.OFFSET_FETCH: self.handle_offset_fetch,
            ApiKey.FIND_COORDINATOR: self.handle_find_coordinator,
            ApiKey.JOIN_GROUP: self.handle_join_group,
            ApiKey.HEARTBEAT: self.handle_heartbeat,
            ApiKey.LEAVE_GROUP: self.handle_leave_group,
            ApiKey.SYNC_GROUP: self.handle_sync_group,
            ApiKey.INIT_PRODUCER_ID: self.handle_init_producer_id,
            ApiKey.OFFSET_FOR_LEADER_EPOCH: self.handle_offset_for_leader_epoch,
            ApiKey.ADD_PARTITIONS_TO_TXN: self.handle_add_partitions_to_txn,
            ApiKey.ADD_OFFSETS_TO_TXN: self.handle_add_offsets_to_txn,
            ApiKey.END_TXN: self.handle_end_txn,
            ApiKey.WRITE_TXN_MARKERS: self.handle_write_txn_markers,
            ApiKey.TXN_OFFSET_COMMIT: self.handle_txn_offset_commit,
            ApiKey.DESCRIBE_GROUPS: self.handle_describe_groups,
            ApiKey.LIST_GROUPS: self.handle_list_groups,
            ApiKey.DELETE_GROUPS: self.handle_delete_groups,
            ApiKey.OFFSET_DELETE: self.handle_offset_delete,
        }

    def handle(self, request: Request, reply: Reply) -> None:
        handler = self.handlers.get(request.api_key)
        if handler is None:
            raise ValueError(f"broker {self.broker.id} does not serve {request.api_key.name}")
        handler(request, reply)

    # --- coordinators on this broker ---------------------------------------------------------

    def _group_coordinator(self) -> GroupCoordinator:
        coordinator = self.broker.group_coordinator
        if coordinator is None:
            raise RuntimeError(f"broker {self.broker.id} has no group coordinator wired")
        return coordinator

    def _transaction_coordinator(self) -> TransactionCoordinator:
        coordinator = self.broker.transaction_coordinator
        if coordinator is None:
            raise RuntimeError(f"broker {self.broker.id} has no transaction coordinator wired")
        return coordinator

    # --- metadata ----------------------------------------------------------------------------

    def handle_metadata(self, request: MetadataRequest, reply: Reply) -> None:
        """The broker's metadata cache; an unknown topic is created when auto-creation is on
        (Kafka's `KafkaApis.handleTopicMetadataRequest` → `AutoTopicCreationManager`)."""
        broker = self.broker
        controller = broker.controller
        config = broker.config
        topics: list[MetadataResponseTopic] = []
        names = sorted(broker.topics) if request.topics is None else request.topics
        for name in names:
            view = broker.topics.get(name)
            if view is None:
                if (
                    request.allow_auto_topic_creation
                    and config["auto.create.topics.enable"]
                    and name not in controller.topics
                    and controller.has_quorum()
                ):
                    try:
                        validate_topic_name(name)
                        self.create_topic(
                            name,
                            int(config["num.partitions"]),
                            min(
                                int(config["default.replication.factor"]),
                                len(broker.ctx.nodes.broker_ids()),
                            ),
                            None,
                        )
                        error = "LEADER_NOT_AVAILABLE"
                    except KafkaError as exc:
                        error = protocol_name(exc)
                else:
                    error = "UNKNOWN_TOPIC_OR_PARTITION"
                topics.append(MetadataResponseTopic(name, error))
                continue
            if not view.partitions:
                topics.append(MetadataResponseTopic(name, "LEADER_NOT_AVAILABLE"))
                continue
            topics.append(
                MetadataResponseTopic(
                    name,
                    "",
                    tuple(
                        MetadataResponsePartition(
                            number, r.leader, r.leader_epoch, tuple(r.replicas), tuple(r.isr)
                        )
                        for number, r in sorted(view.partitions.items())
                    ),
                    view.internal,
                )
            )
        reply(MetadataResponse(tuple(topics)))

    # --- produce, fetch, offsets -------------------------------------------------------------

    def handle_produce(self, request: ProduceRequest, reply: Reply) -> None:
        """Each partition's batch is appended; the response goes once every partition is done
        (at once for acks=1, after replication for acks=all); acks=0 gets no response."""
        data = request.partition_data
        results: dict[int, ProducePartitionResponse] = {}
        remaining = [len(data)]
        acks = request.acks

        def done_one(index: int) -> Callable[[str, int, int], None]:
            def complete(error: str, base: int, log_start: int) -> None:
                results[index] = ProducePartitionResponse(data[index].tp, error, base, log_start)
                remaining[0] -= 1
                if remaining[0] == 0 and acks != 0:
                    reply(ProduceResponse(tuple(results[i] for i in range(len(data)))))

            return complete

        for index, partition_data in enumerate(data):
            self.broker.handle_produce(
                partition_data.tp, partition_data.records, acks, request.timeout_ms, done_one(index)
            )

    def handle_fetch(self, request: FetchRequest | FollowerFetchRequest, reply: Reply) -> None:
        if isinstance(request, FollowerFetchRequest):
            self.broker.replica_manager.handle_follower_fetch(request, reply)
            return
        if request.session_epoch != FINAL_EPOCH:
            handle_consumer_session_fetch(self.broker, request, reply)
            return
        self.broker.handle_consumer_fetch(
            dict(request.fetch_offsets),
            request.isolation_level,
            request.max_wait_ms,
            request.partition_max_bytes,
            lambda response: reply(FetchResponse(response)),  # type: ignore[arg-type]
        )

    def handle_list_offsets(self, request: ListOffsetsRequest, reply: Reply) -> None:
        error, offset = self.broker.handle_list_offsets(
            request.tp, request.timestamp, request.isolation_level
        )
        reply(ListOffsetsResponse(request.tp, error, offset))

    def handle_offset_for_leader_epoch(
        self, request: OffsetForLeaderEpochRequest, reply: Reply
    ) -> None:
        error, epoch, end_offset = self.broker.handle_offset_for_leader_epoch(
            request.tp, request.current_leader_epoch, request.leader_epoch
        )
        reply(OffsetForLeaderEpochResponse(request.tp, error, epoch, end_offset))

    # --- groups ------------------------------------------------------------------------------

    def handle_find_coordinator(self, request: FindCoordinatorRequest, reply: Reply) -> None:
        if request.key_type == GROUP:
            service = self._group_coordinator().service
            error, node = service.find_coordinator(self.broker, request.key)
        else:
            transactions = self._transaction_coordinator().service
            error, found = transactions.handle_find_coordinator(self.broker, request.key)
            node = -1 if found is None else int(found)
        reply(FindCoordinatorResponse(error, int(node)))

    def handle_join_group(self, request: JoinGroupRequest, reply: Reply) -> None:
        self._group_coordinator().handle_join(request, reply)

    def handle_sync_group(self, request: SyncGroupRequest, reply: Reply) -> None:
        self._group_coordinator().handle_sync(
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
            request.assignments,
            reply,
        )

    def handle_heartbeat(self, request: HeartbeatRequest, reply: Reply) -> None:
        self._group_coordinator().handle_heartbeat(
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
            lambda error: reply(HeartbeatResponse(error)),
        )

    def handle_leave_group(self, request: LeaveGroupRequest, reply: Reply) -> None:
        self._group_coordinator().handle_leave(
            request.group_id,
            request.member_id,
            request.group_instance_id,
            request.reason,
            lambda error: reply(LeaveGroupResponse(error)),
        )

    def handle_offset_commit(self, request: OffsetCommitRequest, reply: Reply) -> None:
        self._group_coordinator().offsets.handle_offset_commit(
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
            dict(request.offsets),
            lambda error: reply(OffsetCommitResponse(error)),
        )

    def handle_offset_fetch(self, request: OffsetFetchRequest, reply: Reply) -> None:
        def answer(response: tuple[str, dict[Any, int]]) -> None:
            reply(OffsetFetchResponse(response[0], dict(response[1])))

        partitions = None if request.partitions is None else list(request.partitions)
        self._group_coordinator().offsets.handle_offset_fetch(request.group_id, partitions, answer)

    def handle_describe_groups(self, request: DescribeGroupsRequest, reply: Reply) -> None:
        coordinator = self._group_coordinator()
        described = []
        for group_id in request.groups:
            error, group = coordinator.serve(group_id)
            if error or group is None or group.state == DEAD:
                described.append(DescribedGroup(group_id, error, DEAD, "", None, -1, None, ()))
                continue
            members = tuple(
                DescribedGroupMember(
                    m.member_id, m.group_instance_id, m.client_id, tuple(sorted(m.assignment))
                )
                for m in group.members.values()
            )
            described.append(
                DescribedGroup(
                    group_id,
                    "",
                    group.state,
                    CONSUMER_PROTOCOL,
                    group.protocol,
                    group.generation,
                    group.leader,
                    members,
                )
            )
        reply(DescribeGroupsResponse(tuple(described)))

    def handle_list_groups(self, request: ListGroupsRequest, reply: Reply) -> None:
        """The groups this broker coordinates (an admin asks every broker and merges)."""
        coordinator = self._group_coordinator()
        listed = []
        for group_id in sorted(coordinator.groups):
            error, group = coordinator.serve(group_id)
            if error or group is None or group.state == DEAD:
                continue
            if request.states_filter and group.state not in request.states_filter:
                continue
            listed.append(ListedGroup(group_id, CONSUMER_PROTOCOL, group.state))
        reply(ListGroupsResponse(tuple(listed)))

    def handle_delete_groups(self, request: DeleteGroupsRequest, reply: Reply) -> None:
        offsets = self._group_coordinator().offsets
        names = list(request.groups_names)
        results: dict[str, str] = {}

        def delete_next() -> None:
            if len(results) == len(names):
                reply(DeleteGroupsResponse(dict(results)))
                return
            group_id = names[len(results)]

            def deleted(error: str) -> None:
                results[group_id] = error
                delete_next()

            offsets.admin_delete_group(group_id, deleted)

        delete_next()

    def handle_offset_delete(self, request: OffsetDeleteRequest, reply: Reply) -> None:
        def answer(response: tuple[str, dict[Any, str]]) -> None:
            reply(OffsetDeleteResponse(response[0], dict(response[1])))

        self._group_coordinator().offsets.admin_delete_offsets(
            request.group_id, list(request.partitions), answer
        )

    # --- transactions ------------------------------------------------------------------------

    def handle_init_producer_id(self, request: InitProducerIdRequest, reply: Reply) -> None:
        if request.transactional_id is None:
            # An idempotent producer: any broker hands out a new producer id.
            reply(InitProducerIdResponse("", self.allocate_producer_id(), 0))
            return
        expected = (
            (request.producer_id, request.producer_epoch) if request.producer_id >= 0 else None
        )

        def answer(response: tuple[str, Any]) -> None:
            error, payload = response
            if error or payload is None:
                reply(InitProducerIdResponse(error))
            else:
                reply(InitProducerIdResponse("", int(payload[0]), int(payload[1])))

        self._transaction_coordinator().handle_init_producer_id(
            request.transactional_id, request.transaction_timeout_ms, expected, answer
        )

    def handle_add_partitions_to_txn(
        self, request: AddPartitionsToTxnRequest, reply: Reply
    ) -> None:
        self._transaction_coordinator().handle_add_partitions(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            list(request.partitions),
            lambda response: reply(AddPartitionsToTxnResponse(response[0])),
        )

    def handle_add_offsets_to_txn(self, request: AddOffsetsToTxnRequest, reply: Reply) -> None:
        self._transaction_coordinator().handle_add_offsets(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.group_id,
            lambda response: reply(AddOffsetsToTxnResponse(response[0])),
        )

    def handle_end_txn(self, request: EndTxnRequest, reply: Reply) -> None:
        self._transaction_coordinator().handle_end_txn(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            lambda response: reply(EndTxnResponse(response[0])),
        )

    def handle_txn_offset_commit(self, request: TxnOffsetCommitRequest, reply: Reply) -> None:
        store = self.broker.txn_offsets
        if store is None:
            reply(TxnOffsetCommitResponse("COORDINATOR_NOT_AVAILABLE"))
            return
        store.handle_txn_offset_commit(
            request.producer_id,
            request.producer_epoch,
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
            request.offsets,
            lambda error: reply(TxnOffsetCommitResponse(error)),
        )

    def handle_write_txn_markers(self, request: WriteTxnMarkersRequest, reply: Reply) -> None:
        write_txn_marker(
            self.broker,
            request.tp,
            request.producer_id,
            request.producer_epoch,
            "COMMIT" if request.transaction_result else "ABORT",
            lambda error: reply(WriteTxnMarkersResponse(error)),
            request.coordinator_epoch,
        )
