"""Check records against a domain's contract as the stream does: the project's Java contract check
(lakehouse.events.contract_jvm) with the domain's spec, on a local Flink, in batch.

    .venv-flink/bin/python flink_jobs/check_contract.py --domain sales --input records.jsonl --output verdicts.jsonl

Each input line is {"id": ..., "value": base64 or null}; each output line {"id", "reason", "detail",
"event_id", "event_time", "watermark_time"} (reason null when valid; watermark_time is the source
table's watermark column, read from the raw value before any check, to the millisecond). Used to prove that the Java contract check
and the Python one (lakehouse.events.contracts) give the same verdicts, record by record.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

from lakehouse.bootstrap.jars import functions_jar
from lakehouse.domains import get_domain
from lakehouse.events.contract_jvm import register, verdict_query, watermark_time_sql
from lakehouse.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default=None)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    domain = get_domain(settings.definitions_dir, args.domain)
    records = []
    for line in args.input.read_text().splitlines():
        item = json.loads(line)
        value = None if item["value"] is None else bytearray(base64.b64decode(item["value"]))
        records.append((int(item["id"]), value))
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("parallelism.default", "1")
    env.get_config().set("table.local-time-zone", "UTC")
    register(env, functions_jar(settings.project_root))
    schema = DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()), DataTypes.FIELD("value", DataTypes.BYTES())])
    env.create_temporary_view("records", env.from_elements(records, schema))
    watermark_time = watermark_time_sql("`value`", domain.event_time_field)
    query = (
        f"SELECT id, reason, detail, event_id, CAST(event_time AS STRING), CAST({watermark_time} AS STRING)"
        f" FROM ({verdict_query(domain, 'records')})"
    )
    with args.output.open("w") as out, env.execute_sql(query).collect() as rows:
        for row in rows:
            keys = ("id", "reason", "detail", "event_id", "event_time", "watermark_time")
            out.write(json.dumps(dict(zip(keys, row, strict=True))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
