"""The request and response objects of Kafka's protocol, one frozen pair per API.

Clients talk to brokers (and the admin client to the controller quorum) only through these
objects; a broker's one request handler (`engine.server.kafka_apis.KafkaApis`) dispatches each
request by its `api_key` to the handler that serves it. Names follow Kafka's protocol: the API
names of `ApiKeys`, the field names of the JSON message definitions (snake_case), and error
fields named by Kafka's `Errors` enum (`""` is `NONE`); `error_code` gives the protocol number.

One module per API family: `metadata` (Metadata, DescribeCluster), `produce`, `fetch` (Fetch,
the follower fetch, ListOffsets, OffsetForLeaderEpoch), `group` (FindCoordinator and the group
APIs), `txn` (the transaction APIs) and `admin` (topics, configs, elections, the quorum).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from engine.errors import error_for_name


class ApiKey(IntEnum):
    """Kafka's API keys (`org.apache.kafka.common.protocol.ApiKeys`) for the APIs simulated here."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_CONFIGS = 32
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLUSTER = 60
    DESCRIBE_QUORUM = 55


def error_code(error: str) -> int:
    """The protocol error code of an `Errors` name (`""` is NONE, 0)."""
    if not error:
        return 0
    code = error_for_name(error).code
    return -1 if code is None else code


class Request:
    """A request: its API key, and the name its message travels under on the simulated
    network (what the stage draws)."""

    api_key: ClassVar[ApiKey]
    # The follower fetch travels as "replica_fetch"; every other request as its API's name.
    network_kind: ClassVar[str] = ""

    # kind(), worked out once per request class (every request sent asks for it).
    _kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        api_key = cls.__dict__.get("api_key", getattr(cls, "api_key", None))
        cls._kind = cls.network_kind or (api_key.name.lower() if api_key is not None else "")

    @classmethod
    def kind(cls) -> str:
        return cls._kind or cls.network_kind or cls.api_key.name.lower()


class Response:
    """A response; `error` is a Kafka `Errors` name, `""` when there is none."""

    error: str

    @property
    def error_code(self) -> int:
        return error_code(self.error)


Reply = Callable[[object], None]


class RequestEndpoint(Protocol):
    """What a client sees of a broker on the network: whether its process is up, whether it
    drops the response (Cluster.lose_responses), and its one request handler."""

    @property
    def alive(self) -> bool: ...

    def lose_reply(self) -> bool: ...

    def handle_request(self, request: Request, reply: Reply) -> None: ...
