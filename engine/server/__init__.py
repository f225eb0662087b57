"""A broker (Kafka's core server module): the broker, replica manager, partitions, the replica
fetcher, the fetch purgatory.
"""
