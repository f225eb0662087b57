"""Kafka Dojo's simulated Apache Kafka 4.0 cluster (KRaft, classic consumer groups).

Pure Python, standard library only, deterministic: see shared/design/ENGINE_API.md.
"""

from engine import errors
from engine.cluster import Cluster
from engine.common.records import ConsumerRecord, RecordMetadata, TopicPartition

__all__ = ["Cluster", "ConsumerRecord", "RecordMetadata", "TopicPartition", "errors"]
