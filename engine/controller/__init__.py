"""The KRaft controller quorum (Kafka's metadata module: QuorumController)."""
