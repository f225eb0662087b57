"""The consumer: KafkaConsumer, its coordinator, heartbeat and offset handling."""
