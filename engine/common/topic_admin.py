"""Topic administration rules checked before the controller sees a request: Kafka's legal topic
names (`Topic.validate`) and the partition and replication counts `CreateTopics` accepts.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import InvalidPartitionsError, InvalidReplicationFactorError, InvalidTopicError

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_LENGTH = 249
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


def validate_topic_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidTopicError("Topic name is illegal, it can't be empty.")
    if name in (".", ".."):
        raise InvalidTopicError('Topic name cannot be "." or "..".')
    if len(name) > MAX_TOPIC_LENGTH:
        raise InvalidTopicError(
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_LENGTH} characters, "
            f"topic name: {name[:40]}..."
        )
    if not LEGAL_TOPIC.match(name):
        raise InvalidTopicError(
            f'Topic name "{name}" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'."
        )
    return name


def validate_new_topic(name: Any, partitions: Any, replication_factor: Any) -> None:
    """A learner's create_topic call: legal name, at least one partition and one replica."""
    validate_topic_name(name)
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise InvalidPartitionsError(
            f"Number of partitions must be larger than 0, not {partitions!r}."
        )
    if (
        not isinstance(replication_factor, int)
        or isinstance(replication_factor, bool)
        or replication_factor < 1
    ):
        raise InvalidReplicationFactorError(
            f"Replication factor must be larger than 0, not {replication_factor!r}."
        )
