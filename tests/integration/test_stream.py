"""The Flink bronze ingestion job end to end, on the real broker, S3 server and catalog.

The `sales` domain's job on the Flink session cluster goes through game days, in order, each
checked for exactness: generated events with duplicates, late and malformed ones (plus raw
garbage); kill -9 of the TaskManager mid-stream (supervisord restarts it, Flink restarts the job
from its checkpoint); a broker restart mid-stream; a stop with a savepoint and a start from it;
kill -9 of the JobManager mid-stream (the cluster loses the job, the keeper resubmits it from its
last retained checkpoint); the S3 server down for 30 s mid-stream; a burst of schema-breaking
events. After each, bronze holds exactly the unique valid events sent so far, the dead-letter
table exactly the rejected records, and sent = bronze + dead letters + duplicates. Then the
newest retained checkpoints are lost before a restart: the job resumes from an older one,
nothing is lost, and silver (the silver job's own transforms over bronze) holds every event
exactly once. (Parallelism 3 over 3 partitions: tests/integration/test_new_domain.py.)
"""

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.events.generator import Mix, generate
from lakehouse.events.read import group_position
from lakehouse.events.send import read_event_kinds, send
from lakehouse.medallion import silver
from lakehouse.services import flink, streams
from lakehouse.services.supervisor import Supervisor
from lakehouse.streaming.checkpoints import (
    UNUSABLE,
    checkpoint_dir,
    latest_restore_point,
    savepoint_dir,
)
from lakehouse.streaming.names import consumer_group, job_name, program_name

pytestmark = pytest.mark.slow

GARBAGE = [None, b"", b"\x00\xff\xfe garbage", b"[" * 3000 + b"]" * 3000, b"null", b'{"event_id": 1}', b"x" * 100_000]


@pytest.fixture(scope="module")
def sales(stack):
    return get_domain(stack.definitions_dir, "sales")


@pytest.fixture(scope="module")
def running_stream(stack, sales):
    streams.start(stack, "sales")
    yield
    streams.stop(stack, "sales")


@pytest.fixture(scope="module")
def ledger():
    return Ledger()


class Ledger:
    """What was sent so far, across phases, and since when: bronze rows are ingested (and dead
    letters written) at real time, so this module's are those from its first send on."""

    def __init__(self):
        self.since = datetime.now(UTC)
        self.kinds: dict[str, str] = {}
        self.duplicates = 0
        self.malformed = 0

    def add(self, manifest_path, manifest):
        self.kinds.update(read_event_kinds(manifest_path))
        self.duplicates += manifest["duplicates"]
        self.malformed += manifest["malformed"]

    @property
    def sent(self):
        return len(self.kinds) + self.duplicates + self.malformed


def bronze_state(catalog, domain, ledger):
    """Bronze rows and dead letters the job wrote during this module (other tests may write
    bronze rows directly, with ingestion times long past)."""
    since = ledger.since.isoformat()
    bronze = (
        catalog.load_table(domain.tables.bronze)
        .scan(row_filter=f"ingested_at >= '{since}'", selected_fields=("event_id", "is_late"))
        .to_arrow()
    )
    letters = (
        catalog.load_table(domain.tables.dead_letter)
        .scan(
            row_filter=f"failed_at >= '{since}'",
            selected_fields=("domain", "reason", "kafka_topic", "kafka_partition", "kafka_offset"),
        )
        .to_arrow()
        .to_pylist()
    )
    return bronze, [row for row in letters if row["domain"] == domain.name]


def wait_exact(catalog, domain, ledger, timeout_s=240):
    """Wait until bronze and the dead letters hold exactly what was sent, then check it stays so."""
    deadline = time.monotonic() + timeout_s
    while True:
        bronze, letters = bronze_state(catalog, domain, ledger)
        if bronze.num_rows >= len(ledger.kinds) and len(letters) >= ledger.malformed:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"bronze has {bronze.num_rows}/{len(ledger.kinds)} events, {len(letters)}/{ledger.malformed} dead letters"
            )
        time.sleep(2)
    time.sleep(6)  # a few more flushes: nothing extra may arrive
    bronze, letters = bronze_state(catalog, domain, ledger)
    ids = bronze["event_id"].to_pylist()
    assert len(ids) == len(set(ids)), "duplicate event_ids in bronze"
    assert set(ids) == set(ledger.kinds)
    assert len(letters) == ledger.malformed
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in letters}) == len(letters)
    assert ledger.sent == len(ids) + len(letters) + ledger.duplicates
    return bronze, letters


def produce_garbage(settings, domain):
    """Returns {partition: offset} of the last garbage record written to each partition."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "message.max.bytes": 1_000_000})
    last: dict[int, int] = {}

    def delivered(error, message):
        assert error is None, error
        last[message.partition()] = max(last.get(message.partition(), -1), message.offset())

    for index, value in enumerate(GARBAGE):
        producer.produce(domain.topic.name, key=f"garbage-{index}".encode(), value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    return last


def test_exact_with_duplicates_late_and_malformed(stack, iceberg_catalog, sales, running_stream, ledger, tmp_path):
    started = datetime.now(UTC)
    path = tmp_path / "phase1.json"
    records = generate(sales, 12_000, mix=Mix(duplicates=0.08, late=0.05, out_of_order=0.05, malformed=0.04), seed=21)
    manifest = send(stack, sales, records, total=12_000, manifest_path=path, progress=False)
    ledger.add(path, manifest)
    garbage = produce_garbage(stack, sales)
    ledger.malformed += len(GARBAGE)

    bronze, letters = wait_exact(iceberg_catalog, sales, ledger)
    # the job's consumer group offsets (committed with each checkpoint) are the stream's position:
    # past the trailing garbage too
    ends = {int(p): o for p, o in manifest["last_offsets"].items()}
    for partition, offset in garbage.items():
        ends[partition] = max(ends.get(partition, -1), offset)
    # (committed asynchronously when a checkpoint completes, so it may follow bronze by a checkpoint or two)
    deadline = time.monotonic() + 60
    while (position := group_position(stack, consumer_group("sales"), sales.topic.name)) != ends:
        assert time.monotonic() < deadline, f"the job's committed offsets {position} never reached {ends}"
        time.sleep(1)
    reasons = Counter(row["reason"] for row in letters)
    assert set(reasons) >= {"invalid_json", "missing_field", "oversized", "empty", "invalid_encoding", "not_an_object"}
    assert all(row["kafka_topic"] == "sales.events" for row in letters)
    envelope = iceberg_catalog.load_table(sales.tables.bronze).scan(
        selected_fields=("event_id", "kafka_timestamp", "ingested_at")
    )
    for row in envelope.to_arrow().to_pylist():
        if row["event_id"] not in ledger.kinds:
            continue  # rows other tests wrote into bronze directly
        # Kafka's record timestamp (the produce time) and the commit time, both real and ordered
        assert started - timedelta(seconds=5) <= row["kafka_timestamp"] <= row["ingested_at"] <= datetime.now(UTC)

    late_flags = dict(zip(bronze["event_id"].to_pylist(), bronze["is_late"].to_pylist(), strict=True))
    flagged = {event_id for event_id, late in late_flags.items() if late}
    kinds = ledger.kinds
    # late events are kept, and only events generated past the allowed lateness are flagged
    assert flagged and all(kinds[event_id] == "late" for event_id in flagged)
    assert sum(1 for kind in kinds.values() if kind == "late") >= len(flagged)

    # every rejected record is also on the dead-letter topic, with its source coordinates
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka.bootstrap_servers,
            "group.id": f"dlq-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([sales.topic.dead_letter])
    wanted = {(r["kafka_partition"], r["kafka_offset"]) for r in letters}
    first = {int(p): o for p, o in manifest["first_offsets"].items()}
    seen, deadline = set(), time.monotonic() + 60
    while not wanted <= seen and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            body = json.loads(message.value())
            # Only letters of records this module sent: the topic may hold older ones.
            if body["kafka_offset"] >= first.get(body["kafka_partition"], 0):
                seen.add((body["kafka_partition"], body["kafka_offset"]))
    consumer.close()
    assert seen == wanted


def background_send(settings, domain, count, rate, seed, path, results):
    records = generate(domain, count, mix=Mix(duplicates=0.05, late=0.02, out_of_order=0.05, malformed=0.02), seed=seed)
    results.append(send(settings, domain, records, total=count, rate=rate, manifest_path=path, progress=False))


def test_the_cluster_runs_the_job(stack, sales, running_stream):
    """The REST API lists the domain's job as running, and `stream status` reports it."""
    job = flink.wait_for_running(stack, job_name("sales"), timeout_s=120)
    [status] = streams.status(stack, "sales")
    assert status.state == "RUNNING" and status.job["id"] == job["jid"] and status.job["state"] == "RUNNING"


def test_kill_dash_nine_of_the_taskmanager_mid_stream_stays_exact(
    stack, iceberg_catalog, sales, running_stream, ledger, tmp_path
):
    supervisor = Supervisor(stack.state_dir)
    job = flink.alive_job(stack, job_name("sales"))
    path, results = tmp_path / "phase2.json", []
    sender = threading.Thread(target=background_send, args=(stack, sales, 15_000, 2_000, 22, path, results))
    sender.start()
    time.sleep(4)  # mid-stream: the job is committing while events keep arriving
    pid = supervisor.process("flink-taskmanager")["pid"]
    os.killpg(pid, signal.SIGKILL)  # the TaskManager's JVM and the job's Python workers
    sender.join()
    ledger.add(path, results[0])
    deadline = time.monotonic() + 60
    while supervisor.process("flink-taskmanager")["pid"] in (0, pid):
        assert time.monotonic() < deadline, "supervisord did not restart the TaskManager"
        time.sleep(1)
    wait_exact(iceberg_catalog, sales, ledger)
    # the same job, restarted by Flink from its checkpoint (not resubmitted)
    assert flink.job_metrics(stack, job["jid"])["restarts"] >= 1


def test_broker_restart_mid_stream_stays_exact(stack, iceberg_catalog, sales, running_stream, ledger, tmp_path):
    supervisor = Supervisor(stack.state_dir)
    path, results = tmp_path / "phase3.json", []
    sender = threading.Thread(target=background_send, args=(stack, sales, 10_000, 2_000, 23, path, results))
    sender.start()
    time.sleep(2)
    supervisor.rpc.stopProcess("kafka", True)
    time.sleep(3)
    supervisor.rpc.startProcess("kafka", True)
    sender.join()
    ledger.add(path, results[0])
    wait_exact(iceberg_catalog, sales, ledger, timeout_s=300)


def test_stop_with_savepoint_and_resume_from_it_stays_exact(
    stack, iceberg_catalog, sales, running_stream, ledger, tmp_path
):
    streams.stop(stack, "sales")
    assert flink.alive_job(stack, job_name("sales")) is None
    [savepoint] = savepoint_dir(stack, "sales").glob("savepoint-*/_metadata")
    assert latest_restore_point(stack, "sales") == savepoint.parent
    # events arriving while the stream is stopped wait in Kafka
    path = tmp_path / "phase4.json"
    records = generate(sales, 3_000, mix=Mix(duplicates=0.05, late=0.02, out_of_order=0.05, malformed=0.02), seed=24)
    ledger.add(path, send(stack, sales, records, total=3_000, manifest_path=path, progress=False))
    streams.start(stack, "sales")
    job = flink.wait_for_running(stack, job_name("sales"), timeout_s=120)  # resubmitted
    assert flink.job_metrics(stack, job["jid"])["restored_from"] == f"file:{savepoint.parent}"
    wait_exact(iceberg_catalog, sales, ledger)


def send_during(settings, domain, ledger, path, count, seed, disruption, rate=2_000):
    """Send `count` events at `rate` while `disruption()` runs (it starts 3 s in)."""
    results = []
    sender = threading.Thread(target=background_send, args=(settings, domain, count, rate, seed, path, results))
    sender.start()
    time.sleep(3)
    disruption()
    sender.join()
    ledger.add(path, results[0])


def test_kill_dash_nine_of_the_jobmanager_mid_stream_stays_exact(
    stack, iceberg_catalog, sales, running_stream, ledger, tmp_path
):
    supervisor = Supervisor(stack.state_dir)
    lost = flink.wait_for_running(stack, job_name("sales"), timeout_s=120)
    pid = supervisor.process("flink-jobmanager")["pid"]
    send_during(stack, sales, ledger, tmp_path / "jobmanager.json", 10_000, 25, lambda: os.killpg(pid, signal.SIGKILL))
    # A session cluster without HA forgets its jobs: the keeper submits it again, from the last
    # checkpoint the lost job retained.
    job = flink.wait_for_running(stack, job_name("sales"), timeout_s=240)
    assert job["jid"] != lost["jid"]
    assert f"/{lost['jid']}/chk-" in flink.job_metrics(stack, job["jid"])["restored_from"]
    wait_exact(iceberg_catalog, sales, ledger, timeout_s=300)


def test_s3_server_down_for_30_s_mid_stream_stays_exact(
    stack, iceberg_catalog, sales, running_stream, ledger, tmp_path
):
    supervisor = Supervisor(stack.state_dir)

    def s3_outage():
        supervisor.rpc.stopProcess("seaweedfs", True)
        time.sleep(30)  # the sink cannot write or commit: the job fails and restarts until S3 is back
        supervisor.rpc.startProcess("seaweedfs", True)

    send_during(stack, sales, ledger, tmp_path / "s3.json", 10_000, 26, s3_outage)
    wait_exact(iceberg_catalog, sales, ledger, timeout_s=360)
    assert flink.wait_for_running(stack, job_name("sales"), timeout_s=120)


def test_a_burst_of_schema_breaking_events_is_dead_lettered_and_the_job_never_fails(
    stack, iceberg_catalog, sales, running_stream, ledger
):
    job = flink.wait_for_running(stack, job_name("sales"), timeout_s=120)
    restarts = flink.job_metrics(stack, job["jid"])["restarts"]
    breaks = [
        lambda body: body.pop("quantity"),
        lambda body: body.update(quantity="three"),
        lambda body: body.update(event_time="yesterday"),
        lambda body: body.update(unit_price_cents=-5),
        lambda body: body.update(currency="euros!"),
        lambda body: body.update(event_id=None),
    ]
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    burst: set[tuple[int, int]] = set()

    def delivered(error, message):
        assert error is None, error
        burst.add((message.partition(), message.offset()))

    for index, record in enumerate(generate(sales, 3_000, mix=Mix(0, 0, 0, 0), seed=27)):
        body = json.loads(record.value)
        breaks[index % len(breaks)](body)
        producer.produce(sales.topic.name, key=record.key, value=json.dumps(body).encode(), on_delivery=delivered)
    assert producer.flush(30) == 0
    ledger.malformed += len(burst)
    _, letters = wait_exact(iceberg_catalog, sales, ledger)
    reasons = Counter(r["reason"] for r in letters if (r["kafka_partition"], r["kafka_offset"]) in burst)
    assert sum(reasons.values()) == 3_000
    assert set(reasons) <= {"missing_field", "wrong_type", "contract_violation", "invalid_event_time"}
    assert reasons["missing_field"] and reasons["wrong_type"]
    # the same job, never restarted: bad input is data, not a failure
    assert flink.alive_job(stack, job_name("sales"))["jid"] == job["jid"]
    assert flink.job_metrics(stack, job["jid"])["restarts"] == restarts


def test_lost_latest_checkpoints_fall_back_to_an_older_one_and_silver_stays_exact(
    stack, iceberg_catalog, spark, sales, running_stream, ledger, tmp_path
):
    """Runs last: resuming from an older checkpoint may write events to bronze a second time."""
    supervisor = Supervisor(stack.state_dir)
    lost = flink.wait_for_running(stack, job_name("sales"), timeout_s=120)
    checkpoints = checkpoint_dir(stack, "sales") / lost["jid"]
    keeper_pid = supervisor.process(program_name("sales"))["pid"]
    retained: list = []

    def numbers():
        return sorted(int(m.parent.name[4:]) for m in checkpoints.glob("chk-*/_metadata"))

    started = numbers()[-1] if numbers() else 0

    def crash_and_lose_checkpoints():
        # the crash comes once the three retained checkpoints were all taken while sending: the
        # one resumed from is then behind events the two lost ones had committed to bronze
        deadline = time.monotonic() + 90
        while len(numbers()) < 3 or numbers()[-3] <= started:
            assert time.monotonic() < deadline, f"no three new checkpoints while sending: {numbers()}"
            time.sleep(0.5)
        os.kill(keeper_pid, signal.SIGSTOP)  # hold the keeper, so the loss happens before it resubmits
        os.killpg(supervisor.process("flink-jobmanager")["pid"], signal.SIGKILL)
        time.sleep(2)
        complete = sorted((m.parent for m in checkpoints.glob("chk-*/_metadata")), key=lambda c: -int(c.name[4:]))
        newest, corrupted = complete[:2]
        shutil.rmtree(newest)  # the newest one deleted, the one before it corrupted
        (corrupted / "_metadata").write_bytes(b"\x00" * 100)
        retained[:] = [newest, corrupted]
        os.kill(keeper_pid, signal.SIGCONT)

    send_during(stack, sales, ledger, tmp_path / "checkpoints.json", 50_000, 29, crash_and_lose_checkpoints)
    newest, corrupted = retained
    job = flink.wait_for_running(stack, job_name("sales"), timeout_s=300)
    restored = flink.job_metrics(stack, job["jid"])["restored_from"]
    assert (corrupted / UNUSABLE).exists()  # tried, failed, marked, never tried again
    assert restored and f"/{lost['jid']}/chk-" in restored
    assert int(restored.rsplit("chk-", 1)[1]) < int(corrupted.name[4:])

    # Nothing lost: bronze and the dead letters hold at least every record sent.
    deadline = time.monotonic() + 300
    while True:
        bronze, letters = bronze_state(iceberg_catalog, sales, ledger)
        ids = bronze["event_id"].to_pylist()
        if (
            set(ids) >= set(ledger.kinds)
            and len({(r["kafka_partition"], r["kafka_offset"]) for r in letters}) >= ledger.malformed
        ):
            break
        assert time.monotonic() < deadline, f"bronze has {len(set(ids))}/{len(ledger.kinds)} events"
        time.sleep(2)
    assert set(ids) == set(ledger.kinds)
    copies = len(ids) - len(set(ids))
    print(f"bronze holds {copies} second copies after the fallback")
    assert copies > 0  # what the older checkpoint re-read: silver below must absorb them

    # Silver, by the silver job's own transforms, holds each event exactly once.
    mine = spark.createDataFrame([(i,) for i in ledger.kinds], "event_id string")
    since = ledger.since.replace(tzinfo=None)
    rows = spark.table(sales.tables.bronze).where(F.col("ingested_at") >= F.lit(since)).join(mine, "event_id")
    valid, rejected = silver.split_by_rules(silver.conform(silver.parse(rows, sales), sales, "game-day"), sales)
    promoted = [r.event_id for r in silver.dedup(valid).select("event_id").collect()]
    quarantined = {r.event_id for r in rejected.select("event_id").collect()}
    assert len(promoted) == len(set(promoted))
    assert set(promoted) | quarantined == set(ledger.kinds) and not set(promoted) & quarantined
