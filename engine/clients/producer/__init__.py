"""The producer: KafkaProducer, its accumulator, sender, sequences and transaction manager."""
