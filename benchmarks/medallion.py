"""Medallion benchmark (`make bench`): does the hourly silver MERGE cost follow the interval or the
table, what does a 1M-event gold day cost, copy-on-write or merge-on-read, and the replay rate.

On a private stack (sales domain):
1. silver holds SMALL synthetic rows (100k per day, the latest days); one hour of HOUR events
   (the generator's mix with duplicates and late events, plus UPDATES newer versions of rows
   already in silver) is promoted with the real job; then silver grows to LARGE rows (older
   days) and the next hour, of the same shape, is promoted. Prints both times and the ratio.
2. the same hour again on the large table, once copy-on-write and once merge-on-read (rolled
   back in between), each followed by a read of the day it touched.
3. GOLD_DAY synthetic silver events on one date, then the daily gold job for that date.
4. what the quality gate (validation on the audit branch) cost next to the MERGE of each run above.
5. REPLAY events sent to Kafka and recovered into bronze by the batch replay job.
6. those events promoted to silver and gold, then reconciled (Kafka = bronze + dead letters +
   duplicates, bronze = silver + quarantine, gold = silver's aggregates), each check timed.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime, timedelta

TODAY = date(2026, 1, 10)  # the benchmark's "now": fixed, so runs are comparable
ROWS_PER_DAY = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000_000, help="silver rows for the first MERGE")
    parser.add_argument("--large", type=int, default=10_000_000, help="silver rows for the second MERGE")
    parser.add_argument("--hour", type=int, default=100_000, help="events in the promoted hour")
    parser.add_argument("--updates", type=int, default=2_000, help="newer versions of silver rows in the hour")
    parser.add_argument("--gold-day", type=int, default=1_000_000, help="silver events on the gold benchmark's day")
    parser.add_argument("--replay", type=int, default=100_000, help="events for the Kafka -> bronze replay")
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()

    from benchmarks.private_stack import private_stack

    quiet = json.dumps({"spark.ui.showConsoleProgress": "false"})
    with private_stack(
        LAKEHOUSE_SPARK__DRIVER_MEMORY=args.driver_memory, LAKEHOUSE_SPARK__EXTRA_CONF=quiet
    ) as settings:
        run(settings, args)


def run(settings, args) -> None:
    from lakehouse.domains import get_domain
    from lakehouse.engines.iceberg import load_catalog
    from lakehouse.engines.spark import get_spark
    from lakehouse.jobs import JobRequest
    from lakehouse.medallion import bronze_to_silver, quality, silver_to_gold

    sales = get_domain(settings.definitions_dir, "sales")
    spark = get_spark(settings, "bench-medallion")
    spark.sparkContext.setLogLevel("ERROR")
    catalog = load_catalog(settings)
    silver = sales.tables.silver
    noon = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)

    gates = {}  # what the quality gate cost next to the MERGE, per run measured

    def promote(hour_start: datetime, label: str) -> float:
        t0 = time.monotonic()
        result = bronze_to_silver.run(spark, JobRequest(sales, hour_start, hour_start + timedelta(hours=1)))
        seconds = time.monotonic() - t0
        print(f"  {label:<44} {seconds:7.1f} s  ({result.rows_read} read, {result.rows_merged} merged)")
        gates[f"silver hour, {label}"] = {**result.details.get("seconds", {}), "run": seconds}
        return seconds

    # Warm-up: JVM, catalog and S3 clients, so the first timed run is not penalised.
    synth_silver(spark, silver, ROWS_PER_DAY, TODAY, 1, seed=0)
    hour_of_events(spark, catalog, sales, noon - timedelta(hours=2), 2_000, 50, seed=0)
    promote(noon - timedelta(hours=2), "warm-up hour (2k events)")

    print(f"\n1. silver MERGE of one hour ({args.hour} events + {args.updates} updates):")
    synth_silver(
        spark, silver, args.small - ROWS_PER_DAY, TODAY - timedelta(days=1), (args.small // ROWS_PER_DAY) - 1, 1
    )
    size = spark.table(silver).count()
    hour_of_events(spark, catalog, sales, noon, args.hour, args.updates, seed=1)
    small = promote(noon, f"into silver of {size:,} rows")
    t0 = time.monotonic()
    older = args.large - size
    synth_silver(spark, silver, older, TODAY - timedelta(days=size // ROWS_PER_DAY), older // ROWS_PER_DAY, 2)
    size = spark.table(silver).count()
    print(f"  (grew silver to {size:,} rows in {time.monotonic() - t0:.0f} s)")
    hour_of_events(spark, catalog, sales, noon + timedelta(hours=1), args.hour, args.updates, seed=2)
    large = promote(noon + timedelta(hours=1), f"into silver of {size:,} rows")
    print(f"  ratio large / small: {large / small:.2f} (target <= 1.5)")

    print("\n2. copy-on-write vs merge-on-read, same hour, same table (then a read of that day):")
    hour = noon + timedelta(hours=2)
    hour_of_events(spark, catalog, sales, hour, args.hour, args.updates * 5, seed=3)
    before = spark.sql(f"SELECT snapshot_id FROM {silver}.refs WHERE name = 'main'").first().snapshot_id
    modes = {}
    for mode in ("copy-on-write", "merge-on-read"):
        spark.sql(f"CALL {settings.catalog.name}.system.rollback_to_snapshot('{silver}', {before})")
        spark.sql(
            f"ALTER TABLE {silver} SET TBLPROPERTIES ('write.merge.mode' = '{mode}', "
            f"'write.update.mode' = '{mode}', 'write.delete.mode' = '{mode}')"
        )
        merge = promote(hour, f"{mode} MERGE (+{args.updates * 5} updates)")
        t0 = time.monotonic()
        spark.sql(
            f"SELECT count(*), sum(amount_cents) FROM {silver} WHERE event_date = DATE'{TODAY.isoformat()}'"
        ).collect()
        read = time.monotonic() - t0
        files = spark.sql(f"SELECT count(*) AS n FROM {silver}.files").first().n
        print(f"  {'':<44} read of the day {read:5.1f} s; {files} data and delete files")
        modes[mode] = (merge, read)
    spark.sql(
        f"ALTER TABLE {silver} UNSET TBLPROPERTIES ('write.merge.mode', 'write.update.mode', 'write.delete.mode')"
    )
    cow, mor = modes["copy-on-write"], modes["merge-on-read"]
    print(f"  MERGE ratio mor / cow: {mor[0] / cow[0]:.2f}; read ratio mor / cow: {mor[1] / cow[1]:.2f}")

    print(f"\n3. gold for one day of {args.gold_day:,} events:")
    gold_day = date(2025, 6, 1)
    synth_silver(spark, silver, args.gold_day, gold_day, 1, seed=4)
    day_start = datetime.combine(gold_day, datetime.min.time(), tzinfo=UTC)
    for label in ("first run (all rows inserted)", "re-run (nothing changed)"):
        t0 = time.monotonic()
        result = silver_to_gold.run(spark, JobRequest(sales, day_start, day_start + timedelta(days=1), backfill=True))
        seconds = time.monotonic() - t0
        print(f"  {label:<44} {seconds:7.1f} s  ({result.rows_read} read, {result.rows_merged} merged)")
        if result.rows_merged:
            checked = result.details.get("quality", {}).values()
            cross = sum(
                t for q in checked for asset, t in q["seconds"].items() if asset.endswith(quality.MATCHES_SILVER)
            )
            gates[f"gold day, {label}"] = {**result.details.get("seconds", {}), "run": seconds, "cross": cross}

    print("\n4. the quality gate (Great Expectations on the audit branch) next to the MERGE it audits")
    print("   and next to the rest of its run (the run's wall time without the gate):")
    for label, seconds in gates.items():
        if "merge" in seconds:
            merge, gate, run = seconds["merge"], seconds.get("quality", 0.0), seconds["run"]
            print(
                f"  {label:<50} MERGE {merge:5.1f} s, gate {gate:5.1f} s, publish {seconds.get('publish', 0):4.1f} s;"
                f" gate / MERGE {gate / merge:.2f} (target <= 0.20), gate / rest of run {gate / (run - gate):.2f}"
            )
            if "cross" in seconds:
                print(
                    f"  {'':<50} of the gate, the cross-table checks (matches_silver: the day's gold"
                    f" recomputed from silver) {seconds['cross']:.1f} s; without them gate / MERGE"
                    f" {(gate - seconds['cross']) / merge:.2f}"
                )
    print("  (the warm-up hour's gate includes importing Great Expectations, ~12 s of CPU, which the job")
    print("   starts in the background when it starts: every Airflow task is a new process)")

    print(f"\n5. Kafka -> bronze replay of {args.replay:,} events:")
    sent_from = replay(settings, sales, args.replay)

    print(f"\n6. reconciliation of those {args.replay:,} events, promoted to silver and gold:")
    reconciliation(settings, sales, sent_from)


def synth_silver(spark, table: str, rows: int, last_day: date, days: int, seed: int) -> None:
    """`rows` silver rows spread evenly over the `days` days ending on `last_day`."""
    from pyspark.sql import functions as F

    if rows <= 0 or days <= 0:
        return
    cities = "array(" + ", ".join(
        f"array('{c}', '{k}', '{m}')"
        for c, k, m in [("Berlin", "DE", "EUR"), ("Paris", "FR", "EUR"), ("Madrid", "ES", "EUR"),
                        ("London", "GB", "GBP"), ("Chicago", "US", "USD"), ("Lyon", "FR", "EUR")]
    ) + ")"  # fmt: skip
    first = datetime.combine(last_day - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    frame = (
        spark.range(rows)
        .withColumn("_day", (F.col("id") % days).cast("int"))
        .withColumn("_place", F.expr(f"{cities}[int(id % 6)]"))
        .select(
            F.expr("uuid()").alias("event_id"),
            (
                F.lit(first)
                + F.expr("make_dt_interval(_day, 0, 0, 0)")
                + F.expr(f"make_dt_interval(0, 0, 0, rand({seed}) * 86399)")
            ).alias("event_time"),  # noqa: E501
            F.concat(F.lit(f"ord-{seed}-"), F.col("id").cast("string")).alias("order_id"),
            F.concat(F.lit("cust-"), (F.col("id") % 5000).cast("string")).alias("customer_id"),
            F.concat(F.lit("sm-"), (F.col("id") % 60).cast("string")).alias("salesman_id"),
            F.col("_place")[0].alias("city"),
            F.col("_place")[1].alias("country"),
            F.lit("lamp").alias("product"),
            ((F.col("id") % 8) + 1).cast("int").alias("quantity"),
            ((F.col("id") * 7919) % 20000 + 1).alias("unit_price_cents"),  # the gate refuses a price of 0
            F.col("_place")[2].alias("currency"),
        )
        .withColumn("event_date", F.to_date("event_time"))
        .withColumn("amount_cents", F.col("quantity") * F.col("unit_price_cents"))
        .withColumn("ingested_at", F.col("event_time"))
        .withColumn("processed_at", F.current_timestamp())
        .withColumn("run_id", F.lit("synthetic"))
    )
    frame.select(*spark.table(table).columns).writeTo(table).append()


def hour_of_events(spark, catalog, domain, hour_start: datetime, count: int, updates: int, seed: int) -> None:
    """Bronze rows ingested during the hour: generated events (duplicates, late ones) plus newer
    versions of `updates` rows already in silver on that day."""
    import pyarrow as pa

    from lakehouse.events.contracts import Contract, check_record
    from lakehouse.events.generator import Mix, generate
    from tests.medallion_data import KafkaMeta, bronze_row

    hour_end = hour_start + timedelta(hours=1)
    contract = Contract(domain.contract)
    values = [r.value for r in generate(domain, count, Mix(0.02, 0.02, 0.03, 0), 1 / 24, seed, lambda: hour_end)]
    day = hour_start.date().isoformat()
    known = spark.sql(
        f"SELECT event_id, event_time, order_id, customer_id, salesman_id, city, country, product, quantity, "
        f"unit_price_cents, currency FROM {domain.tables.silver} WHERE event_date = DATE'{day}' LIMIT {updates}"
    ).collect()
    for row in known:
        newer = {
            **row.asDict(),
            "event_time": (row.event_time.replace(tzinfo=UTC) + timedelta(seconds=30)).isoformat(),
            "quantity": 9,
        }
        values.append(json.dumps(newer).encode())
    rows = []
    step = timedelta(hours=1) / max(len(values), 1)
    for i, value in enumerate(values):
        verdict = check_record(domain, contract, value)
        if not verdict.valid:
            raise SystemExit(f"benchmark made an invalid event ({verdict.detail}): {value[:300]!r}")
        arrival = hour_start + step * i
        meta = KafkaMeta(
            domain.topic.name, i % domain.topic.partitions, seed * 10**7 + i, int(arrival.timestamp() * 1000)
        )
        rows.append(bronze_row(domain, verdict.event, value, meta, False, arrival))
    table = catalog.load_table(domain.tables.bronze)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def replay(settings, domain, count: int) -> None:
    from lakehouse.engines.spark import get_spark
    from lakehouse.events.generator import generate
    from lakehouse.events.send import send
    from lakehouse.events.topics import ensure_topics
    from lakehouse.jobs import JobRequest
    from lakehouse.medallion import kafka_to_bronze

    ensure_topics(settings, [domain])
    started = datetime.now(UTC)
    manifest = send(settings, domain, generate(domain, count, seed=9), total=count, progress=False)
    now = datetime.now(UTC)
    spark = get_spark(settings, "bench-replay")
    t0 = time.monotonic()
    result = kafka_to_bronze.run(
        spark, JobRequest(domain, now - timedelta(hours=1), now + timedelta(minutes=5)), settings=settings
    )
    seconds = time.monotonic() - t0
    print(
        f"  recovery: {result.rows_read} records -> {result.rows_merged} bronze rows, "
        f"{result.rows_quarantined} dead letters in {seconds:.1f} s ({result.rows_read / seconds:.0f} records/s; "
        f"produce ran at {manifest['sent'] / manifest['seconds']:.0f} ev/s)"
    )
    return started


def reconciliation(settings, domain, start: datetime) -> None:
    """Promote what the replay ingested since `start`, then time each reconciliation check."""
    from lakehouse.engines.spark import get_spark
    from lakehouse.jobs import JobRequest
    from lakehouse.medallion import bronze_to_silver, reconcile, silver_to_gold

    spark = get_spark(settings, "bench-reconcile")
    promoted = datetime.now(UTC) + timedelta(seconds=1)
    for label, job in (("bronze -> silver", bronze_to_silver), ("silver -> gold", silver_to_gold)):
        t0 = time.monotonic()
        result = job.run(spark, JobRequest(domain, start, promoted))
        print(f"  {label:<44} {time.monotonic() - t0:7.1f} s  ({result.rows_read} read, {result.rows_merged} merged)")
    end = datetime.now(UTC)
    total = 0.0
    for name, check in (
        ("kafka_bronze", lambda: [reconcile.kafka_bronze(spark, settings, domain, start, end)]),
        ("bronze_silver", lambda: [reconcile.bronze_silver(spark, domain, start, end)]),
        ("silver_gold", lambda: reconcile.silver_gold(spark, domain, start, end)),
    ):
        t0 = time.monotonic()
        checks = check()
        seconds = time.monotonic() - t0
        total += seconds
        for c in checks:
            print(f"  {name:<14} {c.table:<28} {seconds:6.1f} s  {c.describe()[:140]}")
    print(f"  reconciliation, all checks: {total:.1f} s")


if __name__ == "__main__":
    main()
