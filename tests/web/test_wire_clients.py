"""Real Kafka clients against a live sandbox's loopback listeners (the Kafka wire front door)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from engine import TopicPartition
from engine.partitioner import partition_for_key
from webapp import services
from webapp.engine_host.host import ClusterHost

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

KEYS = [f"user-{i}".encode() for i in range(30)]


async def wired_host(registry: Any) -> ClusterHost:
    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await registry.ensure(sandbox.id)
    assert host is not None
    await host.enable_wire()
    return host


async def logged_commands(host: ClusterHost) -> int:
    from webapp.models import ClusterCommand

    rows = ClusterCommand.objects.filter(cluster_id=host.cluster_id)
    return int(await database_sync_to_async(rows.count)())


def produce_with_keys(bootstrap: str) -> list[Any]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    futures = [producer.send("orders", key=key, value=b"v-" + key) for key in KEYS]
    producer.flush(timeout=30)
    metadata = [f.get(timeout=30) for f in futures]
    producer.close(timeout=5)
    return metadata


def consume_in_group(bootstrap: str, wanted: int) -> tuple[list[Any], Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        "orders",
        bootstrap_servers=bootstrap,
        group_id="billing",
        client_id="billing-app",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    deadline = time.monotonic() + 40
    while len(records) < wanted and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.commit()
    return records, consumer


async def test_kafka_python_produces_with_keys_to_murmur2_partitions(host_registry: Any) -> None:
    host = await wired_host(host_registry)
    metadata = await asyncio.to_thread(produce_with_keys, host.wire.bootstrap_servers())
    assert [m.partition for m in metadata] == [partition_for_key(k, 3) for k in KEYS]
    # Every acknowledged record is in the simulated log at the offset the client was told.
    cluster = host.runtime.cluster
    for key, m in zip(KEYS, metadata, strict=True):
        stored = cluster.read("orders", m.partition, m.offset, max_records=1)
        assert (stored[0].key, stored[0].value) == (key, b"v-" + key)
    assert host.runtime.cluster.remote.snapshot()


async def test_kafka_python_consumes_in_a_group_commits_and_shows_in_describe_group(
    host_registry: Any,
) -> None:
    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    await asyncio.to_thread(produce_with_keys, bootstrap)
    records, consumer = await asyncio.to_thread(consume_in_group, bootstrap, len(KEYS))
    try:
        assert sorted(r.key for r in records) == sorted(KEYS)
        group = host.runtime.cluster.describe_group("billing")
        assert group.state == "Stable"
        assert [m.client_id for m in group.members] == ["billing-app"]
        assert group.members[0].assignment == {TopicPartition("orders", p) for p in range(3)}
        ends = {
            TopicPartition("orders", p.partition): p.high_watermark
            for p in host.runtime.cluster.describe_topic("orders").partitions
        }
        assert group.offsets == ends
        assert sum(group.lag.values()) == 0
        host._publish()
        assert 'data-group="billing"' in host.published.fragments["stage"]
        assert "billing-app" in host.published.fragments["stage"]
        # Its positions are where its broker saw it fetch from last: once it has fetched past
        # everything it read (its next poll), they are the log ends.
        wanted = {(tp.topic, tp.partition): end for tp, end in ends.items()}
        fetched: dict[tuple[str, int], int] = {}
        for _ in range(30):
            fetched = {
                (t, p): o
                for c in host.runtime.cluster.snapshot()["remote"]
                if c["client_id"] == "billing-app"
                for t, p, o in c["positions"]
            }
            if fetched == wanted:
                break
            await asyncio.to_thread(consumer.poll, 300)
        assert fetched == wanted
        # kafka-python fetches in incremental sessions (KIP-227): the listener served some.
        sessions = host.wire.fetch_sessions.values()
        assert sum(s.incremental_fetches for s in sessions) > 0

        def describe_over_the_wire() -> Any:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            try:
                return admin.describe_groups(["billing"])["billing"], admin.list_groups()
            finally:
                admin.close()

        described, listed = await asyncio.to_thread(describe_over_the_wire)
        assert described["group_state"] == "Stable"
        assert [m["client_id"] for m in described["members"]] == ["billing-app"]
        assert "billing" in [g["group_id"] for g in listed]
    finally:
        await asyncio.to_thread(consumer.close)


def kcat(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kcat", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_kcat_lists_metadata_produces_and_consumes(host_registry: Any) -> None:
    assert shutil.which("kcat"), "kcat is installed by scripts/test (Debian package kcat)"
    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    listing = await asyncio.to_thread(kcat, "-b", bootstrap, "-L")
    assert " 3 brokers:" in listing
    for broker_id, port in sorted(host.wire.ports.items()):
        assert f"broker {broker_id} at 127.0.0.1:{port}" in listing
    assert 'topic "orders" with 3 partitions:' in listing
    lines = "".join(f"k{i}:value {i}\n" for i in range(12))
    await asyncio.to_thread(kcat, "-b", bootstrap, "-P", "-t", "orders", "-K", ":", stdin=lines)
    cluster = host.runtime.cluster
    stored = sorted((r.key, r.value) for p in range(3) for r in cluster.read("orders", p))
    assert stored == sorted((f"k{i}".encode(), f"value {i}".encode()) for i in range(12))
    consumed = await asyncio.to_thread(
        kcat, "-b", bootstrap, "-C", "-t", "orders", "-o", "beginning", "-e", "-f", "%k=%s\n"
    )
    assert sorted(consumed.splitlines()) == sorted(f"k{i}=value {i}" for i in range(12))
    # librdkafka 2.0.2 compresses only when Produce v0 is advertised: gzip is read, snappy is
    # refused by name (no snappy codec is installed here).
    # (librdkafka sends a batch uncompressed when compressing does not make it smaller.)
    zipped = "zipped " * 500
    await asyncio.to_thread(
        kcat, "-b", bootstrap, "-P", "-t", "orders", "-z", "gzip", "-p", "0", stdin=zipped + "\n"
    )
    assert cluster.read("orders", 0)[-1].value == zipped.encode()
    refused = await asyncio.to_thread(
        subprocess.run,
        ["kcat", "-b", bootstrap, "-P", "-t", "orders", "-z", "snappy", "-p", "0"],
        input="snappy " * 500 + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Broker: Unsupported compression type" in refused.stderr
    assert cluster.read("orders", 0)[-1].value == zipped.encode()


async def test_killing_the_leader_fails_the_real_producer_over_and_keeps_every_acked_record(
    host_registry: Any,
) -> None:
    import threading

    from kafka import KafkaProducer

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    cluster = host.runtime.cluster
    leader = cluster.describe_topic("orders").partitions[0].leader
    leader_port = host.wire.ports[leader]
    acked: list[tuple[bytes, Any]] = []
    failed: list[BaseException] = []
    halfway = threading.Event()

    def produce() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000)
        futures = []
        for i in range(120):
            key = f"key-{i}".encode()
            future = producer.send("orders", key=key, value=b"value-%d" % i)
            future.add_callback(lambda m, key=key: acked.append((key, m)))
            future.add_errback(failed.append)
            futures.append(future)
            if i == 40:
                producer.flush(timeout=30)
                halfway.set()
            time.sleep(0.01)
        producer.flush(timeout=90)
        producer.close(timeout=5)

    thread = asyncio.create_task(asyncio.to_thread(produce))
    await asyncio.to_thread(halfway.wait, 30)
    frame = await host.command({"type": "stop_broker", "broker_id": leader})
    assert frame["type"] == "ack", frame
    assert leader not in host.wire.servers  # its socket is closed, like a killed process's
    await asyncio.wait_for(thread, 120)
    assert failed == []
    assert len(acked) == 120
    new_leader = cluster.describe_topic("orders").partitions[0].leader
    assert new_leader not in (leader, -1)
    for key, m in acked:
        assert m.partition == partition_for_key(key, 3)
        stored = cluster.read("orders", m.partition, m.offset, max_records=1)
        assert stored[0].key == key
    # Starting the broker again reopens its listener on the same port.
    await host.command({"type": "start_broker", "broker_id": leader})
    assert host.wire.ports[leader] == leader_port and leader in host.wire.servers


def raw_exchange(port: int, data: bytes, wait_s: float = 5.0) -> bytes:
    """Send bytes and end the stream, then read until the server closes the connection (or
    `wait_s` passes: "<still open>")."""

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received + b"<still open>"
        except ConnectionResetError:
            pass
    return received


def api_versions_request(version: int, correlation_id: int = 1) -> bytes:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    from webapp.kafka_listener import codec

    body = ApiVersionsRequest(client_software_name="fuzz", client_software_version="1")
    frame = codec.encode_request(codec.Header(18, 3, correlation_id, "fuzz"), body)
    # Same body bytes, any version number in the header: enough to test the version check.
    return frame[:6] + version.to_bytes(2, "big", signed=True) + frame[8:]


async def test_fuzzed_frames_close_only_their_connection_and_change_nothing(
    host_registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import random
    import struct

    host = await wired_host(host_registry)
    await host.command({"type": "pause"})
    port = host.wire.ports[1]
    before = host.runtime.cluster.snapshot()
    logged_before = await logged_commands(host)
    rng = random.Random(18)
    frames = [
        b"\x00\x00",  # a truncated size
        struct.pack(">i", 10) + b"\x00\x03",  # a frame cut short
        struct.pack(">i", 2) + b"\x00\x03",  # a header cut short
        struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,  # a huge size
        struct.pack(">i", -5) + b"\x00" * 8,  # a negative size
        struct.pack(">ihhi", 10, 999, 0, 7) + b"\xff\xff",  # an unknown API key
        struct.pack(">ihhi", 10, 47, 0, 7) + b"\xff\xff",  # a key Kafka has, this listener not
        struct.pack(">ihhi", 10, 3, 99, 7) + b"\xff\xff",  # Metadata v99
        struct.pack(">ihhi", 14, 3, 8, 7) + b"\xff\xff" + b"\x7f\xff\xff\xff",  # junk body
        struct.pack(">ihhi", 10, 0, 2, 7) + b"\xff\xff",  # Produce v2: advertised, refused
    ]
    for _ in range(40):
        size = rng.randint(0, 200)
        frames.append(struct.pack(">i", size) + rng.randbytes(size))
        frames.append(rng.randbytes(rng.randint(1, 64)))
    # A well-behaved connection stays open through all of it.
    bystander = socket.create_connection(("127.0.0.1", port), timeout=5)
    for frame in frames:
        answer = await asyncio.to_thread(raw_exchange, port, frame, 3.0)
        assert answer == b"", (frame, answer)  # closed, with nothing answered
    await asyncio.to_thread(bystander.sendall, api_versions_request(3, correlation_id=42))
    reply = await asyncio.to_thread(bystander.recv, 65536)
    bystander.close()
    assert struct.unpack_from(">ih", reply, 4) == (42, 0)
    for _ in range(50):  # the bystander's close reaches the listener
        if host.wire.connection_count == 0:
            break
        await asyncio.sleep(0.02)
    assert host.runtime.cluster.snapshot() == before
    assert await logged_commands(host) == logged_before
    assert host.wire.connection_count == 0
    assert "closed connection" in caplog.text
    # The listener still serves: ApiVersions v3 is answered, v9 gets a v0 UNSUPPORTED_VERSION.
    good = await asyncio.to_thread(raw_exchange, port, api_versions_request(3), 1.0)
    assert struct.unpack_from(">ih", good, 4) == (1, 0)
    newer = await asyncio.to_thread(raw_exchange, port, api_versions_request(9), 1.0)
    assert struct.unpack_from(">ih", newer, 4) == (1, 35)
    await host.command({"type": "resume"})
    metadata = await asyncio.to_thread(produce_with_keys, host.wire.bootstrap_servers())
    assert len(metadata) == len(KEYS)


async def test_replaying_a_session_with_a_real_client_rebuilds_an_equal_cluster(
    host_registry: Any,
) -> None:
    from lessons.scenarios import ClusterRuntime
    from webapp.engine_host import store

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    await asyncio.to_thread(produce_with_keys, bootstrap)
    records, consumer = await asyncio.to_thread(consume_in_group, bootstrap, len(KEYS))
    await asyncio.to_thread(consumer.close)
    assert len(records) == len(KEYS)
    await host.command({"type": "pause"})
    async with host.lock:
        await host._flush_advance_locked()
        live = host.runtime.cluster.snapshot()
    stored = await database_sync_to_async(store.cluster_load)(cluster_id=host.cluster_id)
    kinds = [c["type"] for c in stored.commands]
    assert kinds.count("wire_request") > 20
    replayed = await asyncio.to_thread(ClusterRuntime.replay, stored.spec, stored.commands)
    assert replayed.cluster.snapshot() == live
    assert replayed.cluster.describe_group("billing").offsets == (
        host.runtime.cluster.describe_group("billing").offsets
    )


async def test_the_sandbox_page_opens_listeners_and_shows_bootstrap_servers(
    host_registry: Any,
) -> None:
    from django.test import AsyncClient

    sandbox = await database_sync_to_async(services.sandbox_create)()
    client = AsyncClient()
    page = await client.get(f"/sandbox/{sandbox.id}/")
    assert b'data-role="enable-kafka-listeners"' in page.content
    answer = await client.post(f"/sandbox/{sandbox.id}/kafka/")
    assert answer.status_code == 302
    host = host_registry.hosts[sandbox.id]
    assert sorted(host.wire.servers) == [1, 2, 3]
    bootstrap = host.wire.bootstrap_servers()
    assert bootstrap.count("127.0.0.1:") == 3
    await asyncio.to_thread(produce_with_keys, bootstrap)
    host._publish()
    html = host.published.fragments["kafka-clients"]
    assert f"bootstrap.servers={bootstrap}" in html
    assert "kafka-python-producer" in html
    # The real producer is drawn on the stage next to the simulated ones.
    # (kafka-python numbers its producers per process: kafka-python-producer-N.)
    assert re.search(
        r"kafka-python-producer-\d+ · real Kafka client", host.published.fragments["stage"]
    )


async def test_a_gzip_compressing_producer_is_read_through_the_standard_library(
    host_registry: Any,
) -> None:
    from kafka import KafkaProducer

    host = await wired_host(host_registry)

    def produce_gzip() -> list[Any]:
        producer = KafkaProducer(
            bootstrap_servers=host.wire.bootstrap_servers(), compression_type="gzip", linger_ms=50
        )
        futures = [producer.send("orders", key=b"same", value=b"zipped-%d" % i) for i in range(10)]
        producer.flush(timeout=30)
        out = [f.get(timeout=30) for f in futures]
        producer.close(timeout=5)
        return out

    metadata = await asyncio.to_thread(produce_gzip)
    partition = partition_for_key(b"same", 3)
    stored = host.runtime.cluster.read("orders", partition)
    assert [r.value for r in stored] == [b"zipped-%d" % i for i in range(10)]
    assert [m.offset for m in metadata] == list(range(10))


async def test_kcat_consumes_in_a_balanced_group(host_registry: Any) -> None:
    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    lines = "".join(f"g{i}:grouped {i}\n" for i in range(9))
    await asyncio.to_thread(kcat, "-b", bootstrap, "-P", "-t", "orders", "-K", ":", stdin=lines)

    def consume_group() -> str:
        done = subprocess.run(
            [
                "kcat",
                "-b",
                bootstrap,
                "-G",
                "kcat-group",
                "-X",
                "auto.offset.reset=earliest",
                "-f",
                "%k=%s\n",
                "-e",
                "orders",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    consumed = await asyncio.to_thread(consume_group)
    assert sorted(consumed.splitlines()) == sorted(f"g{i}=grouped {i}" for i in range(9))
    events = host.runtime.cluster.events
    [joined] = [e for e in events if e.kind == "rebalance_completed" and e.data["assignment"]]
    # librdkafka's leader ran its own assignor (range first) over all three partitions.
    assert joined.data["protocol"] == "range"
    assert sorted(map(tuple, next(iter(joined.data["assignment"].values())))) == [
        ("orders", p) for p in range(3)
    ]
    group = host.runtime.cluster.describe_group("kcat-group")
    assert group.state == "Empty"  # kcat left the group when it exited
    assert sum(group.offsets.values()) == 9


async def test_a_real_consumer_follows_the_new_leader_after_a_kill(host_registry: Any) -> None:
    import threading

    from kafka import KafkaConsumer

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    await asyncio.to_thread(produce_with_keys, bootstrap)
    seen: list[bytes] = []
    first_batch = threading.Event()
    stop = threading.Event()

    def consume() -> None:
        consumer = KafkaConsumer(
            "orders",
            bootstrap_servers=bootstrap,
            group_id="follower-app",
            auto_offset_reset="earliest",
            request_timeout_ms=5000,
        )
        deadline = time.monotonic() + 90
        while not stop.is_set() and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                seen.extend(r.key for r in batch)
            if len(seen) >= len(KEYS):
                first_batch.set()
            if len(seen) >= 2 * len(KEYS):
                break
        consumer.close()

    task = asyncio.create_task(asyncio.to_thread(consume))
    await asyncio.to_thread(first_batch.wait, 40)
    victim = host.runtime.cluster.describe_topic("orders").partitions[0].leader
    await host.command({"type": "stop_broker", "broker_id": victim})
    await asyncio.to_thread(produce_with_keys, bootstrap)
    await asyncio.wait_for(task, 100)
    stop.set()
    assert sorted(seen) == sorted(KEYS * 2)


async def test_a_transactional_producer_commits_and_aborts_and_read_committed_sees_commits(
    host_registry: Any,
) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KafkaTopicPartition

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()

    def transact() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="payments-1")
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(4):
            producer.send("orders", key=b"tx", value=b"kept-%d" % i)
        # Consume-transform-produce: offsets committed inside the transaction (KIP-98).
        producer.send_offsets_to_transaction(
            {KafkaTopicPartition("orders", 0): OffsetAndMetadata(7, "", -1)}, "transformer"
        )
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send("orders", key=b"tx", value=b"dropped")
        producer.flush()  # the record reaches the log first, so the abort needs markers
        producer.abort_transaction()
        producer.close(timeout=5)

    def read_committed() -> list[bytes]:
        consumer = KafkaConsumer(
            "orders",
            bootstrap_servers=bootstrap,
            group_id="committed-reader",
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        # The group's first join waits group.initial.rebalance.delay.ms (3 s of cluster time,
        # run in real time while a client is connected): poll until the four committed
        # records arrived, then a little longer, so an aborted one would show.
        values: list[bytes] = []
        deadline = time.monotonic() + 40
        settle: float | None = None
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for batch in consumer.poll(timeout_ms=300).values():
                values.extend(r.value for r in batch)
            if len(values) >= 4 and settle is None:
                settle = time.monotonic() + 2
        consumer.close()
        return values

    await asyncio.to_thread(transact)
    assert await asyncio.to_thread(read_committed) == [b"kept-%d" % i for i in range(4)]
    for _ in range(10):  # the abort's markers complete on the cluster clock
        events = [e.kind for e in host.runtime.cluster.events]
        if "transaction_aborted" in events:
            break
        await host.advance_live(500)  # no client is connected now, so the clock is stopped
    assert "transaction_committed" in events and "transaction_aborted" in events
    offsets = host.runtime.cluster.describe_group("transformer").offsets
    assert offsets == {TopicPartition("orders", 0): 7}
    partition = partition_for_key(b"tx", 3)
    uncommitted = host.runtime.cluster.read("orders", partition)
    assert [r.value for r in uncommitted] == [b"kept-%d" % i for i in range(4)] + [b"dropped"]


async def test_pausing_the_stage_pauses_the_brokers_and_the_client_times_out(
    host_registry: Any,
) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    producer = await asyncio.to_thread(
        lambda: KafkaProducer(
            bootstrap_servers=bootstrap, request_timeout_ms=1500, delivery_timeout_ms=3000
        )
    )
    try:
        first = await asyncio.to_thread(
            lambda: producer.send("orders", key=b"a", value=b"before").get(timeout=20)
        )
        await host.command({"type": "pause"})
        paused_at = host.runtime.now_ms

        def send_while_paused() -> BaseException | None:
            try:
                producer.send("orders", key=b"a", value=b"paused").get(timeout=20)
            except KafkaTimeoutError as error:
                return error
            return None

        error = await asyncio.to_thread(send_while_paused)
        assert isinstance(error, KafkaTimeoutError)
        assert host.runtime.now_ms == paused_at  # the cluster did not move meanwhile
        partition = partition_for_key(b"a", 3)
        values = [r.value for r in host.runtime.cluster.read("orders", partition)]
        assert values[first.offset] == b"before"
    finally:
        await host.command({"type": "resume"})
        await asyncio.to_thread(producer.close, 2)


async def test_listeners_are_off_unless_switched_on_and_the_setting_opens_them_everywhere(
    host_registry: Any,
) -> None:
    from channels.layers import get_channel_layer

    from webapp.engine_host.leases import LocalLeaseStore
    from webapp.engine_host.registry import HostRegistry

    sandbox = await database_sync_to_async(services.sandbox_create)()
    plain = await host_registry.ensure(sandbox.id)
    assert plain is not None and plain.wire is None  # the default: no port is opened
    assert 'data-role="kafka-listeners-off"' in plain.published.fragments["kafka-clients"]
    await plain.stop("test")

    # KAFKA_DOJO_KAFKA_LISTENERS=1 (settings.DOJO_KAFKA_LISTENERS): every host opens them.
    registry = HostRegistry(
        layer=get_channel_layer(), leases=LocalLeaseStore(), kafka_listeners=True
    )
    try:
        host = await registry.ensure(sandbox.id)
        assert host is not None and host.wire is not None
        assert sorted(host.wire.servers) == [1, 2, 3]
        assert "bootstrap.servers=127.0.0.1:" in host.published.fragments["kafka-clients"]
    finally:
        await registry.shutdown()


async def test_confluent_kafka_creates_a_topic_produces_idempotently_and_consumes_in_a_group(
    host_registry: Any,
) -> None:
    """confluent-kafka's wheel bundles a current librdkafka (kcat's Debian one is 2.0.2)."""
    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()

    def session() -> dict[str, Any]:
        from confluent_kafka import Consumer, Producer
        from confluent_kafka import TopicPartition as KafkaTopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("payments", 2, 3)]).values():
            future.result(20)
        producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "gzip"}
        )
        errors: list[Any] = []
        for i in range(50):
            producer.produce(
                "payments",
                key=b"k%d" % i,
                value=b"v%d " % i * 50,
                on_delivery=lambda e, m: errors.append(e),
            )
        producer.flush(30)
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "ck", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["payments"])
        values: list[bytes] = []
        deadline = time.monotonic() + 40
        while len(values) < 50 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        consumer.commit(asynchronous=False)
        committed = consumer.committed(
            [KafkaTopicPartition("payments", 0), KafkaTopicPartition("payments", 1)], 10
        )
        consumer.close()
        groups = admin.list_consumer_groups().result(10)
        return {
            "errors": errors,
            "values": values,
            "committed": sum(tp.offset for tp in committed),
            "groups": [g.group_id for g in groups.valid],
        }

    result = await asyncio.to_thread(session)
    assert result["errors"] == [None] * 50
    assert sorted(result["values"]) == sorted(b"v%d " % i * 50 for i in range(50))
    assert result["committed"] == 50
    assert "ck" in result["groups"]
    description = host.runtime.cluster.describe_topic("payments")
    assert [len(p.replicas) for p in description.partitions] == [3, 3]
    assert sum(p.high_watermark for p in description.partitions) == 50


async def test_kafka_python_admin_changes_configs_partitions_topics_and_groups(
    host_registry: Any,
) -> None:
    from kafka.admin import (
        ConfigResource,
        ConfigResourceType,
        KafkaAdminClient,
        NewPartitions,
        NewTopic,
    )

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    before = await logged_commands(host)

    def administer() -> dict[str, Any]:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            seen: dict[str, Any] = {}
            topic = ConfigResource(ConfigResourceType.TOPIC, "orders")
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, "orders", {"retention.ms": "3600000"})]
            )
            seen["described"] = admin.describe_configs([topic], config_filter="all")
            broker = ConfigResource(ConfigResourceType.BROKER, "1")
            seen["broker"] = admin.describe_configs([broker], config_filter="all")
            admin.create_partitions({"orders": NewPartitions(total_count=5)})
            admin.create_topics([NewTopic("scratch", 1, 1)])
            admin.delete_topics(["scratch"])
            seen["quorum"] = admin.describe_metadata_quorum()
            seen["elected"] = admin.elect_leaders(0, None)
            return seen
        finally:
            admin.close()

    seen = await asyncio.to_thread(administer)
    cluster = host.runtime.cluster
    described = cluster.describe_topic("orders")
    assert len(described.partitions) == 5
    assert described.config["retention.ms"] == 3600000
    assert "scratch" not in cluster.list_topics()
    # DescribeConfigs: the topic's own setting and an inherited default, with their sources.
    configs = seen["described"]["topic"]["orders"]
    assert configs["retention.ms"]["value"] == "3600000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"
    assert configs["segment.bytes"]["config_type"] == "INT"
    broker_configs = seen["broker"]["broker"]["1"]
    assert broker_configs["num.partitions"]["config_type"] == "INT"
    assert broker_configs["num.partitions"]["config_source"] in (
        "DEFAULT_CONFIG",
        "STATIC_BROKER_CONFIG",
    )
    [quorum] = seen["quorum"]["topics"][0]["partitions"]
    assert quorum["leader_id"] == cluster.describe_quorum().leader_id
    assert await logged_commands(host) > before
    # What the admin client changed is on the timeline, and replays to an equal cluster.
    from webapp.timeline import _command_label

    labels = [
        _command_label({"type": "wire_request", "broker_id": 1, "request": {"api": api}})
        for api in ("incremental_alter_configs", "create_partitions", "delete_topics")
    ]
    assert all(labels)


async def test_kafka_python_admin_deletes_group_offsets_and_groups(host_registry: Any) -> None:
    from kafka import TopicPartition as KafkaTopicPartition
    from kafka.admin import KafkaAdminClient

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()
    await asyncio.to_thread(produce_with_keys, bootstrap)
    _, consumer = await asyncio.to_thread(consume_in_group, bootstrap, len(KEYS))
    await asyncio.to_thread(consumer.close)

    def administer() -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            admin.delete_group_offsets("billing", [KafkaTopicPartition("orders", 0)])
            assert admin.list_group_offsets("billing")["billing"].keys() == {
                KafkaTopicPartition("orders", 1),
                KafkaTopicPartition("orders", 2),
            }
            admin.delete_groups(["billing"])
        finally:
            admin.close()

    await asyncio.to_thread(administer)
    assert "billing" not in host.runtime.cluster.list_groups()


async def test_librdkafka_uses_flexible_versions_and_its_admin_client_works(
    host_registry: Any,
) -> None:
    """librdkafka picks the highest version both sides speak: flexible ones now."""
    from webapp.models import ClusterCommand

    host = await wired_host(host_registry)
    bootstrap = host.wire.bootstrap_servers()

    def session() -> dict[str, Any]:
        from confluent_kafka import Consumer, Producer
        from confluent_kafka.admin import (
            AdminClient,
            AlterConfigOpType,
            ConfigEntry,
            ConfigResource,
            ResourceType,
        )

        admin = AdminClient({"bootstrap.servers": bootstrap})
        cluster = admin.describe_cluster().result(20)
        resource = ConfigResource(
            ResourceType.TOPIC,
            "orders",
            incremental_configs=[
                ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(20)
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "orders")])
        configs = next(iter(described.values())).result(20)
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(20):
            producer.produce("orders", key=b"k%d" % i, value=b"v%d" % i)
        producer.flush(30)
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "flex", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["orders"])
        values = []
        deadline = time.monotonic() + 40
        while len(values) < 20 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        consumer.close()
        return {
            "brokers": sorted(n.port for n in cluster.nodes),
            "retention": configs["retention.ms"].value,
            "values": values,
        }

    result = await asyncio.to_thread(session)
    assert result["brokers"] == sorted(host.wire.ports.values())
    assert result["retention"] == "7200000"
    assert sorted(result["values"]) == sorted(b"v%d" % i for i in range(20))
    assert host.runtime.cluster.describe_topic("orders").config["retention.ms"] == 7200000

    def versions() -> dict[str, int]:
        used: dict[str, int] = {}
        rows = ClusterCommand.objects.filter(cluster_id=host.cluster_id)
        for row in rows:
            request = (row.payload or {}).get("request") or {}
            if request.get("api"):
                used[request["api"]] = max(used.get(request["api"], 0), request["version"])
        return used

    used = await database_sync_to_async(versions)()
    # Flexible versions (compact strings and arrays, tagged fields) for these.
    assert used["metadata"] >= 9 and used["produce"] >= 9 and used["fetch"] >= 12
    assert used["offset_commit"] >= 8 and used["offset_fetch"] >= 6
    # librdkafka's own maximum for DescribeConfigs is 1; its describe_cluster reads Metadata.
    assert used["incremental_alter_configs"] >= 1 and "describe_configs" in used


async def test_the_sandbox_button_is_stored_and_its_listeners_reopen_on_the_same_ports(
    host_registry: Any,
) -> None:
    from django.test import AsyncClient

    from webapp.models import LiveCluster

    sandbox = await database_sync_to_async(services.sandbox_create)()
    host = await host_registry.ensure(sandbox.id)
    assert host is not None and host.wire is None
    client = AsyncClient()
    page = await client.get(f"/sandbox/{sandbox.id}/")
    assert b'data-role="enable-kafka-listeners"' in page.content
    response = await client.post(f"/sandbox/{sandbox.id}/kafka/", {"action": "open"})
    assert response.status_code == 302
    assert host.wire is not None
    ports = dict(host.wire.ports)
    for _ in range(50):  # the ports are stored in the background
        row = await LiveCluster.objects.aget(pk=sandbox.id)
        if row.kafka_listener_ports:
            break
        await asyncio.sleep(0.05)
    assert row.kafka_listeners is True
    assert {int(b): p for b, p in row.kafka_listener_ports.items()} == ports
    page = await client.get(f"/sandbox/{sandbox.id}/")
    assert b'data-role="disable-kafka-listeners"' in page.content

    # The host stops (a restart, or idle); loaded again, it listens on the same ports.
    await host.stop("test")
    again = await host_registry.ensure(sandbox.id)
    assert again is not None and again is not host and again.wire is not None
    assert again.wire.ports == ports
    assert (
        f"bootstrap.servers={again.wire.bootstrap_servers()}"
        in (again.published.fragments["kafka-clients"])
    )
    metadata = await asyncio.to_thread(produce_with_keys, again.wire.bootstrap_servers())
    assert len(metadata) == len(KEYS)

    # Closed with the button: the sockets close, and stay closed on the next start.
    await client.post(f"/sandbox/{sandbox.id}/kafka/", {"action": "close"})
    assert again.wire is None
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(__import__("socket").create_connection, ("127.0.0.1", ports[1]), 1)
    await again.stop("test")
    last = await host_registry.ensure(sandbox.id)
    assert last is not None and last.wire is None
