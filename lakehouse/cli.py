"""`lakehouse`: the command line for the embedded stack and the catalog."""

from __future__ import annotations

import sys
import time

import click

from lakehouse.errors import LakehouseError
from lakehouse.settings import Settings, load_settings
from lakehouse.streaming.names import program_name


class Context:
    """Settings are read once per command, on first use, so `--help` works without a .env."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Streaming medallion lakehouse: embedded services, catalog and jobs."""


@cli.command()
@click.option("--no-demo", is_flag=True, help="Only start the services: no stream, no demo data, no runs.")
@pass_context
def up(ctx: Context, no_demo: bool) -> None:
    """Start the embedded stack (S3, Kafka, PostgreSQL, Airflow, JupyterLab), create the
    catalog's tables, run the demo (stream, events, Airflow runs) and print where to look."""
    from lakehouse.services import stack
    from lakehouse.services.catalog import init_from_settings

    settings = ctx.settings
    started = time.monotonic()
    click.echo(f"Starting the embedded stack (state in {settings.state_dir})")
    stack.up(settings, log=click.echo, apps=False)
    click.echo("Catalog:")
    init_from_settings(settings, log=click.echo)
    if not no_demo:
        from lakehouse import demo

        # The stream's start and the first events overlap Airflow's (which needs the catalog).
        click.echo("Demo, while Airflow starts:")
        pending = demo.start(settings, log=click.echo)
    click.echo("Airflow and JupyterLab:")  # after the catalog: the DAGs read the run audit table
    stack.up(settings, log=click.echo, apps=True)
    click.echo(f"Stack healthy in {time.monotonic() - started:.1f}s.")
    if not no_demo:
        click.echo("Demo:")
        demo.finish(settings, pending, log=click.echo)
        click.echo(f"Demo ready {time.monotonic() - started:.0f}s after `up` started.")
        print_gold_summary(settings)
    print_endpoints(settings)


def print_gold_summary(settings: Settings) -> None:
    """The default domain's first gold table: its rows and dates, and its leading groups."""
    from lakehouse.analytics import Lakehouse, leaders
    from lakehouse.domains import get_domain

    spec = get_domain(settings.definitions_dir).gold[0]
    lh = Lakehouse(settings)
    counts = lh.sql(
        "SELECT count(*) AS rows, count(DISTINCT event_date) AS dates, min(event_date) AS first, "
        f"max(event_date) AS last FROM {spec.table}"
    ).iloc[0]
    measure, rows = leaders(lh, spec)
    click.echo(
        f"\nGold: {spec.table} has {counts['rows']} rows over {counts['dates']} dates "
        f"({str(counts['first'])[:10]} .. {str(counts['last'])[:10]}). Top {', '.join(spec.grain[1:])} by {measure}:"
    )
    click.echo(rows.to_string(index=False))


def published(settings: Settings) -> Settings:
    """The settings as seen from the host in Docker mode: every service is reached at 127.0.0.1,
    where Compose publishes its port (the same number as inside the network)."""
    local = "127.0.0.1"
    update = {
        section: getattr(settings, section).model_copy(update={"host": local})
        for section in ("s3", "kafka", "postgres", "spark", "flink", "airflow", "jupyter")
    }
    update["airflow"] = update["airflow"].model_copy(update={"public_url": None})
    return settings.model_copy(update=update)


def print_endpoints(settings: Settings, logs: str | None = None) -> None:
    """Where to look; `logs` replaces the embedded stack's log folder (Docker mode: `docker compose logs`)."""
    from lakehouse.medallion.quality import docs_index

    s3, pg = settings.s3, settings.postgres
    click.echo(
        "\nWhere to look:\n"
        f"  S3 endpoint      {s3.endpoint}  (credentials: LAKEHOUSE_S3__ACCESS_KEY / __SECRET_KEY in .env)\n"
        f"  warehouse        {s3.warehouse}\n"
        f"  Kafka bootstrap  {settings.kafka.bootstrap_servers}  (Apache Kafka, KRaft)\n"
        f"  Flink UI         {settings.flink.rest_url}  (session cluster: the stream jobs, checkpoints)\n"
        + (
            f"  Spark master     {settings.spark.master_url}  (UI http://{settings.spark.host}:{settings.spark.master_ui_port})\n"
            if settings.spark.standalone
            else ""
        )
        + f"  Iceberg catalog  '{settings.catalog.name}' (JDBC) in postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.catalog_database}\n"
        f"  Airflow UI       {settings.airflow.url}  (login {settings.airflow.admin_user} / "
        f"{settings.secret('airflow', 'admin_password')}, local only; LAKEHOUSE_AIRFLOW__ADMIN_PASSWORD in .env)\n"
        f"  JupyterLab       {settings.jupyter.url}/lab?token={settings.secret('jupyter', 'token')}  "
        "(notebooks/, local only)\n"
        f"  Data Docs        {docs_index(settings)}  (the quality gate's validations, HTML"
        f"{'; in the lakehouse-state volume' if logs == DOCKER_LOGS else ''})\n"
        f"  logs             {logs or settings.state_dir / 'logs'}\n"
        "  stop with        make down"
    )


DOCKER_LOGS = "docker compose logs -f <service>  (make status lists them)"


@cli.command()
@click.option(
    "--published",
    "from_host",
    is_flag=True,
    help="As reached from the host in Docker mode (127.0.0.1, published ports).",
)
@pass_context
def endpoints(ctx: Context, from_host: bool) -> None:
    """Print where to look (the end of `make up`)."""
    settings = ctx.settings
    if from_host:
        print_endpoints(published(settings), logs=DOCKER_LOGS)
    else:
        print_endpoints(settings)


@cli.group("demo")
def demo_group() -> None:
    """The `make up` demo in Docker mode, where the stream keepers and the live generator are
    Compose services (the embedded `lakehouse up` runs the demo itself)."""


@demo_group.command("run")
@pass_context
def demo_run(ctx: Context) -> None:
    """On a running stack: wait for the default domain's stream, send and promote the demo load
    (nothing if it is loaded already), print the gold summary and where to look from the host."""
    from lakehouse import demo

    settings = ctx.settings
    started = time.monotonic()
    click.echo("Demo:")
    pending = demo.start(settings, log=click.echo, stream=demo.wait_for_stream)
    demo.finish(settings, pending, log=click.echo, live=False)
    click.echo(f"Demo ready in {time.monotonic() - started:.0f}s; live events come from the generator service.")
    print_gold_summary(settings)
    print_endpoints(published(settings), logs=DOCKER_LOGS)


@demo_group.command("live")
@pass_context
def demo_live(ctx: Context) -> None:
    """Send `demo.live_rate` events/s of the default domain for as long as it runs (the embedded
    stack's generator program; Docker mode's generator service)."""
    import os

    from lakehouse.domains import get_domain
    from lakehouse.services.embedded import generator_program

    settings = ctx.settings
    domain = get_domain(settings.definitions_dir, None)
    if settings.demo.live_rate <= 0:
        click.echo("demo.live_rate is 0: no live events")
        while True:
            time.sleep(3600)
    command = generator_program(settings, domain.name).command
    os.execv(command[0], command)


@demo_group.command("check")
@click.option(
    "--timeout", "timeout_s", type=float, default=900, show_default=True, help="Seconds to wait for gold rows."
)
@pass_context
def demo_check(ctx: Context, timeout_s: float) -> None:
    """Wait for gold rows and check them and bronze against the demo's record (make docker-smoke); exit 1 on a problem."""
    from lakehouse import demo

    problems = demo.check_gold(ctx.settings, timeout_s=timeout_s, log=click.echo)
    for problem in problems:
        click.echo(f"FAILED: {problem}", err=True)
    if problems:
        sys.exit(1)


@cli.command()
@pass_context
def down(ctx: Context) -> None:
    """Stop the embedded stack cleanly; all data stays in the state folder."""
    from lakehouse.services import stack

    stack.down(ctx.settings)
    click.echo("Embedded stack stopped.")


@cli.command()
@pass_context
def status(ctx: Context) -> None:
    """Show each service's process state and health; exit 1 unless all are healthy."""
    from lakehouse.services import stack

    report = stack.status(ctx.settings)
    for item in report:
        pid = str(item.pid) if item.pid else "-"
        click.echo(f"{item.name:<22} {item.state:<9} pid {pid:<8} {item.endpoint:<40} {item.health}")
    if not all(item.ok for item in report):
        sys.exit(1)


@cli.group()
def catalog() -> None:
    """The Iceberg catalog defined under catalog/."""


@catalog.command("init")
@click.option("--dry-run", is_flag=True, help="Show what would change without changing anything.")
@pass_context
def catalog_init(ctx: Context, dry_run: bool) -> None:
    """Create missing namespaces and tables; apply compatible changes; refuse incompatible ones."""
    from lakehouse.services.catalog import init_from_settings

    init_from_settings(ctx.settings, dry_run=dry_run, log=click.echo)


@cli.group()
def topics() -> None:
    """Kafka topics of the configured domains."""


@topics.command("create")
@click.option("--domain", "domain_names", multiple=True, help="Only these domains (default: all).")
@pass_context
def topics_create(ctx: Context, domain_names: tuple[str, ...]) -> None:
    """Create each domain's topic and dead-letter topic if missing."""
    from lakehouse.domains import get_domain, load_domains
    from lakehouse.events.topics import ensure_topics

    settings = ctx.settings
    if domain_names:
        domains = [get_domain(settings.definitions_dir, name) for name in domain_names]
    else:
        domains = list(load_domains(settings.definitions_dir).values())
    for topic, state in ensure_topics(settings, domains).items():
        click.echo(f"  {topic:<32} {state}")


@cli.command()
@click.option("--domain", default=None, help="Domain to generate (default: the one marked default).")
@click.option("--events", "count", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Events per second; 0 = as fast as possible.",
)
@click.option(
    "--days",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Spread event times over the last D days (0 = live).",
)
@click.option(
    "--duplicates", type=float, default=0.05, show_default=True, help="Fraction re-sent with the same event_id."
)
@click.option(
    "--late",
    type=float,
    default=0.03,
    show_default=True,
    help="Fraction hours or days behind, past the allowed lateness.",
)
@click.option(
    "--out-of-order", type=float, default=0.05, show_default=True, help="Fraction slightly behind, within the lateness."
)
@click.option(
    "--malformed",
    type=float,
    default=0.02,
    show_default=True,
    help="Fraction invalid (bad JSON, contract, types, size).",
)
@click.option("--seed", type=int, default=None, help="Seed for a repeatable run.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the manifest (default: .state/manifests/).",
)
@pass_context
def generate(
    ctx: Context, domain, count, rate, days, duplicates, late, out_of_order, malformed, seed, manifest
) -> None:
    """Send realistic events of a domain to its topic and write a manifest of what was sent."""
    from pathlib import Path

    from lakehouse.domains import get_domain
    from lakehouse.events.generator import Mix
    from lakehouse.events.generator import generate as make_records
    from lakehouse.events.send import send
    from lakehouse.events.topics import ensure_topics

    settings = ctx.settings
    chosen = get_domain(settings.definitions_dir, domain)
    mix = Mix(duplicates=duplicates, late=late, out_of_order=out_of_order, malformed=malformed)
    ensure_topics(settings, [chosen])
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = Path(manifest) if manifest else settings.state_dir / "manifests" / f"{chosen.name}-{stamp}.json"
    records = make_records(chosen, count, mix=mix, days=days, seed=seed)
    result = send(settings, chosen, records, total=count, rate=rate, manifest_path=path)
    click.echo(
        f"sent {result['sent']} ({result['expected_unique_valid']} unique valid, {result['duplicates']} duplicates, "
        f"{result['malformed']} malformed) in {result['seconds']:.1f}s; manifest: {path}"
    )


@cli.group()
def stream() -> None:
    """The Flink jobs streaming each domain's topic into its bronze table."""


@stream.command("start")
@click.option("--domain", default=None, help="Domain (default: the default domain).")
@pass_context
def stream_start(ctx: Context, domain) -> None:
    """Start (or resume from its checkpoint) the domain's ingestion job."""
    from lakehouse.services import streams

    chosen = streams.start(ctx.settings, domain)
    program = program_name(chosen.name)
    click.echo(f"{program} running; log: {ctx.settings.state_dir / 'logs' / f'{program}.log'}")


@stream.command("stop")
@click.option("--domain", default=None, help="Domain (default: the default domain).")
@pass_context
def stream_stop(ctx: Context, domain) -> None:
    """Stop the domain's ingestion job; it resumes from its checkpoint on the next start."""
    from lakehouse.services import streams

    chosen = streams.stop(ctx.settings, domain)
    click.echo(f"{program_name(chosen.name)} stopped")


@stream.command("status")
@pass_context
def stream_status(ctx: Context) -> None:
    """Each domain's keeper and Flink job (state, restarts, checkpoints), bronze rows, last commit and committed Kafka offsets."""
    from lakehouse.services import streams

    for item in streams.status(ctx.settings):
        age = item.seconds_since_commit
        fresh = "-" if age is None else f"{age:.0f}s ago" + (" (over SLA)" if age > item.freshness_sla_s else "")
        offsets = ",".join(f"{p}:{o}" for p, o in sorted(item.committed_offsets.items())) or "-"
        job = item.job
        flink_part = (
            f"job {job['id'][:8]} {job['state']} restarts {job['restarts']} checkpoints {job['checkpoints_completed']} "
            f"records read {job['records_in']}"
            if job
            else "no Flink job"
        )
        click.echo(
            f"{item.domain:<12} {item.state:<9} {flink_part}  bronze {item.bronze_rows:>9} rows  "
            f"last commit {fresh:<18} offsets {offsets}  checkpoint {item.checkpoint or '-'}"
        )


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def maintain(args: tuple[str, ...]) -> None:
    """Compact, rewrite manifests, expire snapshots and remove orphan files of the tables, by
    each table's `maintenance:` policy: [--table T]... [--namespace N]... [--dry-run] (-h for more)."""
    from lakehouse.medallion.maintenance import main as maintenance_main

    raise SystemExit(maintenance_main(list(args)))


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def reconcile(args: tuple[str, ...]) -> None:
    """Check that each layer holds what the one below says for an interval of ingestion time
    (Kafka, bronze, silver, gold); exit 4 on drift: --domain D --start T --end T (-h for more)."""
    from lakehouse.medallion.reconcile import main as reconcile_main

    raise SystemExit(reconcile_main(list(args)))


@cli.command()
@click.argument("dag_id", type=click.Choice(["silver_hourly", "gold_daily", "bronze_replay"]))
@click.option("--domain", default=None, help="Only this domain (default: every domain).")
@click.option("--start", default=None, help="Start of the range, inclusive (ISO date or date-time, UTC).")
@click.option("--end", default=None, help="End of the range, exclusive (ISO date or date-time, UTC).")
@click.option("--backfill", is_flag=True, help="Select rows by event time instead of ingestion time.")
@click.option("--dry-run", is_flag=True, help="Compute and report counts; write nothing.")
@click.option(
    "--native",
    is_flag=True,
    help="Airflow's backfill: one run per data interval in [start, end) instead of one run for the whole range.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the runs finish.")
@pass_context
def trigger(ctx: Context, dag_id, domain, start, end, backfill, dry_run, native, wait) -> None:
    """Start a DAG run (or a native backfill) through Airflow's REST API, with params; exit 1
    if Airflow rejects it or a run fails."""
    from lakehouse.orchestration import trigger as triggering

    params = {"domain": domain, "start_date": start, "end_date": end, "backfill": backfill, "dry_run": dry_run}
    triggering.main(ctx.settings, dag_id, params, native, wait, log=click.echo)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except LakehouseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
