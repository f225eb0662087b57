"""kafka-metadata-quorum.sh describe --status / --replication (MetadataQuorumCommand.java)."""

from __future__ import annotations

from tests.console.conftest import Console


def test_status_reports_leader_epoch_and_voters(orders: Console) -> None:
    admin = orders.session.admin
    out = orders.run("kafka-metadata-quorum.sh $B describe --status")
    lines = out.stdout.splitlines()
    assert [line[:24] for line in lines] == [
        "ClusterId:              ",
        "LeaderId:               ",
        "LeaderEpoch:            ",
        "HighWatermark:          ",
        "MaxFollowerLag:         ",
        "MaxFollowerLagTimeMs:   ",
        "CurrentVoters:          ",
        "CurrentObservers:       ",
    ]
    active = next(c.id for c in orders.cluster.controllers() if c.is_active)
    assert lines[0][24:] == admin.cluster_id()
    assert lines[1][24:] == str(active)
    assert lines[3][24:] == str(orders.cluster.controller.metadata_offset)
    assert (
        lines[6][24:]
        == "["
        + ", ".join(
            f'{{"id": {n}, "directoryId": "{admin.directory_id(n)}", "endpoints": '
            f'["CONTROLLER://localhost:{19000 + n}"]}}'
            for n in (101, 102, 103)
        )
        + "]"
    )
    assert (
        lines[7][24:]
        == "["
        + ", ".join(f'{{"id": {n}, "directoryId": "{admin.directory_id(n)}"}}' for n in (1, 2, 3))
        + "]"
    )


def test_a_stopped_controller_falls_behind_in_replication(orders: Console) -> None:
    cluster = orders.cluster
    follower = next(c.id for c in cluster.controllers() if not c.is_active)
    stopped_at = cluster.now_ms
    cluster.stop_controller(follower)
    orders.run("kafka-topics.sh $B --create --topic more --partitions 2")
    out = orders.run("kafka-metadata-quorum.sh $B describe --replication")
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [c.strip() for c in rows[0]] == [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
        "",
    ]
    widths = [len(c) for c in rows[0]]
    assert all([len(c) for c in row] == widths for row in rows)  # padded columns, tab after each
    by_id = {int(r[0]): [c.strip() for c in r] for r in rows[1:]}
    leader = by_id[next(c.id for c in cluster.controllers() if c.is_active)]
    lagging = by_id[follower]
    assert leader[6] == "Leader" and lagging[6] == "Follower"
    assert int(lagging[3]) == int(leader[2]) - int(lagging[2]) > 0
    assert int(lagging[5]) <= stopped_at
    status = orders.text("kafka-metadata-quorum.sh $B describe --status").splitlines()
    assert status[4] == f"MaxFollowerLag:         {lagging[3]}"


def test_argparse_errors(orders: Console) -> None:
    out = orders.run("kafka-metadata-quorum.sh describe --status")
    assert out.exit_code == 1
    assert out.stderr.splitlines()[-1] == (
        "kafka-metadata-quorum: error: one of the arguments --bootstrap-server "
        "--bootstrap-controller is required"
    )
    out = orders.run("kafka-metadata-quorum.sh $B describe")
    assert (
        out.stderr
        == "One of --status or --replication must be specified with describe sub-command\n"
    )
