"""buffer.memory and max.block.ms: Kafka's BufferPool behind the producer's batches.

Every new batch takes a buffer of batch.size bytes from the producer's pool; the buffer comes
back when the batch is acknowledged or fails. With the pool used up, send() waits on the
cluster's clock for up to max.block.ms and then returns a future failed with
BufferExhaustedException (Kafka: BufferPool.allocate, RecordAccumulator.append, doSend).
"""

from __future__ import annotations

from engine import Cluster
from engine.errors import BufferExhaustedError, KafkaTimeoutError, RecordTooLargeError

KIB = 1024


def stopped_broker_cluster() -> tuple[Cluster, object]:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t", partitions=1, replication_factor=1)
    producer = cluster.producer({"buffer.memory": 64 * KIB})
    producer.send("t", value=b"metadata").get()  # the producer knows the leader
    cluster.stop_broker(1)
    return cluster, producer


def test_sends_fill_the_pool_a_batch_at_a_time_then_block_for_max_block_ms_and_fail() -> None:
    cluster, producer = stopped_broker_cluster()
    # 1 KB values: 15 records to a 16 KiB batch, 4 batches to 64 KiB of buffer.memory.
    buffered = [producer.send("t", value=bytes(KIB)) for _ in range(60)]
    assert cluster.snapshot()["producers"][0]["buffer_available_bytes"] == 0
    assert cluster.snapshot()["producers"][0]["buffered_bytes"] == 64 * KIB
    started = cluster.now_ms

    blocked = producer.send("t", value=bytes(KIB))

    assert cluster.now_ms - started == 60_000  # max.block.ms, default 60 s, on the cluster clock
    assert blocked.failed()
    error = blocked.exception
    assert isinstance(error, BufferExhaustedError)
    assert isinstance(error, KafkaTimeoutError)
    assert error.kafka_name == "BufferExhaustedException"
    assert str(error) == (
        "Failed to allocate 16384 bytes within the configured max blocking time 60000 ms. "
        "Total memory: 65536 bytes. Available memory: 0 bytes. Poolable size: 16384 bytes"
    )
    assert not any(future.done() for future in buffered)
    kinds = [(e.kind, e.time_ms) for e in cluster.events if e.kind.startswith("producer_buffer")]
    assert kinds == [
        ("producer_buffer_blocked", started),
        ("producer_buffer_exhausted", started + 60_000),
    ]
    assert producer.metrics()["buffer_exhausted"] == 1


def test_a_record_that_fits_the_open_batch_never_waits_for_memory() -> None:
    cluster, producer = stopped_broker_cluster()
    for _ in range(59):
        producer.send("t", value=bytes(KIB))
    started = cluster.now_ms
    assert not producer.send("t", value=bytes(KIB)).done()  # the 60th fills the 4th batch
    assert cluster.now_ms == started


def test_max_block_ms_bounds_the_wait() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    producer = cluster.producer({"buffer.memory": 16 * KIB, "max.block.ms": 2500})
    producer.send("t", value=b"metadata").get()
    cluster.stop_broker(1)
    producer.send("t", value=bytes(KIB))
    started = cluster.now_ms
    future = producer.send("t", value=bytes(15 * KIB))  # needs a second batch
    assert cluster.now_ms - started == 2500
    assert isinstance(future.exception, BufferExhaustedError)


def test_a_blocked_send_resumes_as_soon_as_an_acknowledged_batch_frees_its_buffer() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    producer = cluster.producer({"buffer.memory": 32 * KIB, "linger.ms": 5})
    producer.send("t", value=b"metadata").get()
    futures = [producer.send("t", value=bytes(KIB)) for _ in range(30)]  # two full batches
    started = cluster.now_ms
    late = producer.send("t", value=bytes(KIB))
    waited = cluster.now_ms - started
    assert 0 < waited < 1000  # until the first batch's produce response came back
    assert not late.failed()
    assert futures[0].done() and futures[0].succeeded()
    blocked, unblocked = (e for e in cluster.events if e.kind.startswith("producer_buffer"))
    assert blocked.kind == "producer_buffer_blocked"
    assert unblocked.kind == "producer_buffer_unblocked"
    assert unblocked.data["waited_ms"] == waited
    producer.flush()
    assert all(f.succeeded() for f in [*futures, late])
    assert producer.metrics()["buffered_bytes"] == 0


def test_a_record_larger_than_buffer_memory_fails_at_once() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t", config={"max.message.bytes": 2_000_000})
    producer = cluster.producer({"buffer.memory": 64 * KIB, "max.request.size": 1_000_000})
    started = cluster.now_ms
    future = producer.send("t", value=bytes(100 * KIB))
    assert isinstance(future.exception, RecordTooLargeError)
    assert "buffer.memory" in str(future.exception)
    assert cluster.now_ms == started


def test_a_producer_app_faster_than_the_brokers_is_held_back_by_its_buffer() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    apps = cluster.services["apps"]
    app = apps.producer_app(
        "t",
        rate_per_sec=1000,
        keys=0,
        value_bytes=KIB,
        config={"buffer.memory": 64 * KIB, "max.block.ms": 10_000},
    )
    cluster.advance(1000)
    cluster.stop_broker(1)
    sent_before = app.snapshot()["sent"]
    cluster.advance(2000)
    # At most four batches' worth of records are taken while the broker is gone; then the
    # application's thread sits in send().
    state = app.snapshot()
    assert state["sent"] - sent_before <= 4 * 15
    assert state["blocked_since_ms"] is not None
    assert any(e.kind == "producer_buffer_blocked" for e in cluster.events)
    cluster.advance(10_000)
    assert app.snapshot()["failed"] >= 1
    exhausted = [e for e in cluster.events if e.kind == "producer_buffer_exhausted"]
    assert exhausted and exhausted[0].time_ms - state["blocked_since_ms"] == 10_000


def test_a_blocked_producer_app_resumes_when_the_broker_acknowledges_again() -> None:
    cluster = Cluster(brokers=1, seed=3)
    cluster.create_topic("t")
    app = cluster.apps.producer_app(
        "t", rate_per_sec=200, keys=0, value_bytes=KIB, config={"buffer.memory": 32 * KIB}
    )
    cluster.advance(1000)
    cluster.stop_broker(1)
    cluster.advance(3000)
    blocked = app.snapshot()
    assert blocked["blocked_since_ms"] is not None
    cluster.start_broker(1)
    cluster.advance(20_000)
    state = app.snapshot()
    assert state["blocked_since_ms"] is None
    assert state["sent"] > blocked["sent"] + 1000  # 200 a second again
    assert state["failed"] == 0  # back well within max.block.ms (60 s)
    resumed = [
        e.data
        for e in cluster.events
        if e.kind == "producer_buffer_unblocked" and e.time_ms > 4000  # the broker is back
    ]
    assert resumed and resumed[0]["app"] == app.id
    assert 1000 < resumed[0]["waited_ms"] < 60_000


def test_the_metadata_wait_and_the_buffer_wait_share_max_block_ms() -> None:
    # Kafka's doSend passes max.block.ms minus the time waitOnMetadata took to the accumulator.
    cluster = Cluster(brokers=2, seed=3)
    cluster.create_topic("t", partitions=2, replication_factor=1)
    cluster.create_topic("u", partitions=1, replication_factor=1)
    producer = cluster.producer({"buffer.memory": 16 * KIB, "max.block.ms": 5000})
    stuck = next(p for p in cluster.describe_topic("t").partitions if p.leader == 1)
    producer.send("t", value=b"metadata", partition=stuck.partition).get()
    cluster.stop_broker(1)
    producer.send("t", value=bytes(KIB), partition=stuck.partition)  # holds the whole pool
    started = cluster.now_ms
    future = producer.send("u", value=bytes(KIB))  # metadata from broker 2 first, then memory
    assert "u" in producer.topics  # the metadata wait ended with an answer
    assert cluster.now_ms - started == 5000
    assert isinstance(future.exception, BufferExhaustedError)
