"""A partition's storage (Kafka's storage module): the log and its segments, the cleaner, producer
state, the transaction index.
"""
