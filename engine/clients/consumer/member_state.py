"""Where a group member stands in the classic protocol (the states of Kafka's
`AbstractCoordinator`), and the JoinGroup errors it retries or gives up on."""

UNJOINED = "unjoined"
PREPARING_REBALANCE = "preparing_rebalance"  # JoinGroup in flight
COMPLETING_REBALANCE = "completing_rebalance"  # SyncGroup in flight
STABLE = "stable"

COORDINATOR_ERRORS = (
    "NOT_COORDINATOR",
    "COORDINATOR_NOT_AVAILABLE",
    "COORDINATOR_LOAD_IN_PROGRESS",
)
FATAL_JOIN_ERRORS = (
    "FENCED_INSTANCE_ID",
    "INVALID_SESSION_TIMEOUT",
    "INCONSISTENT_GROUP_PROTOCOL",
    "GROUP_MAX_SIZE_REACHED",
    "INVALID_GROUP_ID",
)
