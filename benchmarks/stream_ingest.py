"""Streaming benchmark (`make bench`): raw Kafka consume rate vs the Flink job's ingest rate, and freshness.

Runs on a private stack (free ports, temporary state) so it never touches `make up`'s data:
1. pre-fills the default domain's topic with N events (the generator's default mix);
2. raw confluent-kafka consume rate of that topic;
3. the job's sustained ingest rate: records its Kafka source read per second (Flink's own
   counter, summed over subtasks) over a window that starts after a warm-up and ends while the
   backlog lasts, so neither start-up nor the tail of the topic is in it; then how busy each
   operator chain was (Flink's busyTimeMsPerSecond), which names the bottleneck;
4. freshness, produce -> queryable in bronze (the commit of the snapshot holding the row),
   p50/p95 while events arrive at each steady rate (default 2k and 10k events/s);
5. the job's memory (RSS of the JobManager and the TaskManager with their children) and the
   bronze data files it writes per hour at the configured checkpoint interval (extrapolated
   from the 2k events/s phase: the small files table maintenance has to compact).
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from confluent_kafka import Consumer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="events pre-filled for the rate figures")
    parser.add_argument(
        "--parallelism", type=int, default=None, help="the job's parallelism (default: flink.job_parallelism)"
    )
    parser.add_argument(
        "--rates", default="2000,10000", help="steady rates (events/s, comma-separated) for the freshness figures"
    )
    parser.add_argument("--seconds", type=float, default=30, help="duration of each steady phase")
    args = parser.parse_args()

    from benchmarks.private_stack import private_stack
    from lakehouse.domains import get_domain
    from lakehouse.engines.iceberg import load_catalog
    from lakehouse.events.generator import Mix, generate
    from lakehouse.events.send import send
    from lakehouse.events.topics import ensure_topics
    from lakehouse.services import streams

    overrides = {} if args.parallelism is None else {"LAKEHOUSE_FLINK__JOB_PARALLELISM": str(args.parallelism)}
    with private_stack(**overrides) as settings:
        domain = get_domain(settings.definitions_dir)
        ensure_topics(settings, [domain])
        catalog = load_catalog(settings)

        manifest = send(settings, domain, generate(domain, args.events, seed=1), total=args.events)
        print(
            f"\npre-filled {domain.topic.name}: {manifest['sent']} events in {manifest['seconds']:.1f}s "
            f"({manifest['sent'] / manifest['seconds']:.0f} ev/s produce)"
        )

        raw_rate = raw_consume_rate(settings, domain.topic.name, args.events)
        print(f"raw confluent-kafka consume:     {raw_rate:9.0f} ev/s")

        streams.start(settings, domain.name)
        expected = manifest["expected_unique_valid"]
        job_rate, busy = source_rate(settings, domain, manifest["sent"])
        parallelism = min(settings.flink.job_parallelism, domain.topic.partitions)
        print(f"job ingest (parallelism {parallelism}):    {job_rate:9.0f} records/s read from Kafka (steady, backlog)")
        for chain, (busy_ms, subtasks) in busy.items():
            print(f"  busy {busy_ms:4.0f} ms/s (max of {subtasks} subtasks): {chain[:100]}")
        print(f"ratio job / raw consume:         {job_rate / raw_rate:9.3f}")
        print(f"target 30000 ev/s:               {'met' if job_rate >= 30_000 else 'not met'}")
        print(f"target ratio 0.3:                {'met' if job_rate / raw_rate >= 0.3 else 'not met'}")
        wait_for_rows(catalog, domain, expected)
        bronze = catalog.load_table(domain.tables.bronze)
        print(f"bronze holds {bronze_rows(bronze)} rows of {expected} unique valid events sent")

        for index, rate in enumerate(float(r) for r in args.rates.split(",")):
            started_ms = int(time.time() * 1000)
            count = int(rate * args.seconds)
            phase = send(
                settings, domain, generate(domain, count, mix=Mix(0, 0, 0, 0), seed=2 + index), count,
                rate=rate, progress=False,
            )  # fmt: skip
            wait_for_rows(catalog, domain, bronze_rows(bronze) + phase["expected_unique_valid"])
            bronze = catalog.load_table(domain.tables.bronze)
            p50, p95, n = freshness(bronze, started_ms)
            achieved = phase["sent"] / phase["seconds"]
            target = f" (target p95 <= 3s: {'met' if p95 <= 3 else 'not met'})" if rate <= 2_000 else ""
            print(
                f"freshness at {rate:.0f} ev/s ({achieved:.0f} achieved) over {args.seconds:.0f}s ({n} events): "
                f"p50 {p50:.2f}s  p95 {p95:.2f}s{target}"
            )
            if index == 0:
                files = data_files_added(bronze, started_ms)
                phase_s = (int(time.time() * 1000) - started_ms) / 1000
                print(
                    f"bronze data files: {files} in {phase_s:.0f}s -> {files * 3600 / phase_s:.0f} per hour at a "
                    f"{settings.flink.checkpoint_interval_s:g}s checkpoint interval"
                )
        for name, megabytes in job_memory(settings).items():
            print(f"memory {name:<18} {megabytes:7.0f} MB RSS")
        streams.stop(settings, domain.name)


def wait_for_rows(catalog, domain, rows: int, timeout_s: float = 1800) -> None:
    deadline = time.monotonic() + timeout_s
    table = catalog.load_table(domain.tables.bronze)
    while bronze_rows(table) < rows and time.monotonic() < deadline:
        time.sleep(1)
        table = table.refresh()


def data_files_added(table, since_ms: int) -> int:
    return sum(
        int(s.summary.additional_properties.get("added-data-files", 0))
        for s in table.snapshots()
        if s.timestamp_ms >= since_ms and s.summary
    )


def job_memory(settings) -> dict[str, float]:
    """RSS of the Flink processes (the supervised scripts, their JVMs and any Python workers), in MB."""
    import psutil

    from lakehouse.services.supervisor import Supervisor

    supervisor = Supervisor(settings.state_dir)
    result = {}
    for name in ("flink-jobmanager", "flink-taskmanager"):
        process = psutil.Process(supervisor.process(name)["pid"])
        result[name] = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
    result["total"] = sum(result.values())
    return result


def raw_consume_rate(settings, topic: str, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    received, first = 0, None
    deadline = time.monotonic() + 300
    while received < count and time.monotonic() < deadline:
        for message in consumer.consume(1000, 1.0):
            if message.error() is None:
                first = first or time.monotonic()
                received += 1
    elapsed = time.monotonic() - first
    consumer.close()
    return received / elapsed


def bronze_rows(table) -> int:
    snapshot = table.current_snapshot()
    return int(snapshot.summary.additional_properties.get("total-records", 0)) if snapshot else 0


def source_rate(settings, domain, total: int, warmup_s: float = 10, window_s: float = 15) -> tuple[float, dict]:
    """Records per second the job's Kafka source read between two readings of Flink's counter
    (numRecordsIn of the source's task, summed over subtasks), `window_s` apart after `warmup_s`
    of reading; and each operator chain's busy time then. Exits if the backlog ran out first."""
    from lakehouse.services import flink
    from lakehouse.streaming.names import job_name

    job = flink.wait_for_running(settings, job_name(domain.name))
    detail = flink.rest(settings, "GET", f"/jobs/{job['jid']}")
    source = detail["vertices"][0]

    def metric(vertex: dict, name: str, aggregate: str) -> float:
        path = f"/jobs/{job['jid']}/vertices/{vertex['id']}/subtasks/metrics?get={name}"
        values = flink.rest(settings, "GET", path)
        return float(values[0][aggregate]) if values else 0.0

    def read() -> float:
        return metric(source, "numRecordsIn", "sum")

    while read() == 0:  # until the first records are read
        time.sleep(0.5)
    time.sleep(warmup_s)
    start, started = read(), time.monotonic()
    time.sleep(window_s)
    end, ended = read(), time.monotonic()
    if end >= total:
        raise SystemExit(f"the backlog ran out during the measurement: pre-fill more than {total} (--events)")
    busy = {v["name"]: (metric(v, "busyTimeMsPerSecond", "max"), v["parallelism"]) for v in detail["vertices"]}
    return (end - start) / (ended - started), busy


def freshness(table, since_ms: int) -> tuple[float, float, int]:
    """Seconds from each event's Kafka timestamp to the commit of the snapshot that made it queryable."""
    commits = sorted(s.timestamp_ms for s in table.snapshots() if s.timestamp_ms >= since_ms)
    rows = table.scan(selected_fields=("kafka_timestamp", "ingested_at")).to_arrow()
    delays = []
    for produced, ingested in zip(rows["kafka_timestamp"].to_pylist(), rows["ingested_at"].to_pylist(), strict=True):
        produced_ms = produced.timestamp() * 1000
        if produced_ms < since_ms:
            continue
        ingested_ms = ingested.timestamp() * 1000
        commit_ms = next((c for c in commits if c >= ingested_ms), ingested_ms)
        delays.append((commit_ms - produced_ms) / 1000)
    if not delays:
        raise SystemExit(
            "no events of the steady phase reached bronze: see .state/logs/stream-*.log of the private stack"
        )
    delays.sort()
    return statistics.median(delays), delays[int(len(delays) * 0.95) - 1], len(delays)


if __name__ == "__main__":
    main()
