"""The kinds of typed events the engine emits (`cluster.events`), listed once.

Scenario expectations name these kinds (an unknown kind is an error in the scenario file), the
stage's narration tells them, and lessons wait on them. When the engine publishes its own event
catalogue, `EVENT_KINDS` is read from it; until then this list is the catalogue, and a test
checks that every kind a busy scenario emits is in it.
"""

from __future__ import annotations

try:  # the engine's own catalogue, where it has one
    from engine.events import EVENT_KINDS as _ENGINE_KINDS  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the engine version
    _ENGINE_KINDS = None

_KINDS = (
    # brokers, controllers and the network
    "broker_stopped",
    "broker_started",
    "broker_fenced",
    "broker_unfenced",
    "controller_stopped",
    "controller_started",
    "controller_elected",
    "controller_lost_quorum",
    "network_partitioned",
    "network_healed",
    "response_lost",
    "resource_limit_reached",
    # topics, partitions and replication
    "topic_created",
    "topic_deleted",
    "topic_config_changed",
    "partitions_added",
    "leader_elected",
    "isr_shrunk",
    "isr_expanded",
    "log_truncated",
    "segment_rolled",
    "segment_deleted",
    "log_compacted",
    # producers and transactions
    "produce_failed",
    "produce_retried",
    "duplicate_batch",
    "producer_epoch_bumped",
    "transaction_committed",
    "transaction_aborted",
    "transaction_state_topic_creation_failed",
    "txn_coordinator_loaded",
    # consumers and groups
    "member_joined",
    "member_left",
    "member_removed",
    "rebalance_started",
    "rebalance_completed",
    "partitions_assigned",
    "partitions_revoked",
    "partitions_lost",
    "coordinator_found",
    "coordinator_lost",
    "group_coordinator_loaded",
    "group_coordinator_unloaded",
    "group_deleted",
    "offsets_committed",
    "offsets_commit_failed",
    "auto_commit_failed",
    "offsets_expired",
    "offset_fetched",
    "offset_reset",
    "offset_out_of_range",
    "offsets_topic_creation_failed",
    "max_poll_interval_exceeded",
    "consumer_crashed",
    # apps on the cluster clock
    "app_started",
    "app_stopped",
    "app_crashed",
    "app_error",
    "app_processed",
)

EVENT_KINDS: tuple[str, ...] = tuple(_ENGINE_KINDS) if _ENGINE_KINDS else _KINDS
