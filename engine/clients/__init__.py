"""The clients (Kafka's clients module): the network client, producer, consumer and apps."""
