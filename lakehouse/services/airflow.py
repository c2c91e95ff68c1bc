"""Airflow 3 in the embedded stack: api-server, scheduler, dag-processor and triggerer as
supervisord programs on the project's PostgreSQL, configured only through AIRFLOW__* variables
computed from the shared settings (credentials from .env, never written to airflow.cfg).

    python -m lakehouse.services.airflow <component>

runs one Airflow component with that environment (what the supervisord programs, and the Docker
Compose services, execute); `init` prepares the database, its schema and the pools.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

from lakehouse.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW = Path(sys.executable).parent / "airflow"  # this venv's CLI

# Two runs never MERGE the same layer's tables at once: every task writing a layer takes the
# layer's pool, which has one slot (created when the embedded Airflow starts, or by `airflow pools set`).
POOLS = {
    "lakehouse_bronze": "Kafka -> bronze replays (one at a time)",
    "lakehouse_silver": "bronze -> silver MERGEs (one at a time)",
    "lakehouse_gold": "silver -> gold MERGEs (one at a time)",
}


def airflow_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def passwords_file(settings: Settings) -> Path:
    return airflow_home(settings) / "admin-password.json"


def environment(settings: Settings) -> dict[str, str]:
    """The AIRFLOW__* variables of every Airflow process (and of `airflow` CLI calls)."""
    pg, af = settings.postgres, settings.airflow
    password = quote(settings.secret("postgres", "password"), safe="")
    jwt_secret = settings.secret("airflow", "jwt_secret")
    venv_bin = str(Path(sys.executable).parent)
    return {
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.project_root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(af.parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{af.url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{af.admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(settings)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://{quote(pg.user, safe='')}:{password}@{pg.host}:{pg.port}/{af.database}"
        ),
        "AIRFLOW__API__HOST": af.bind_host or af.host,
        "AIRFLOW__API__PORT": str(af.port),
        "AIRFLOW__API__BASE_URL": af.browser_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__API_AUTH__JWT_ISSUER": "lakehouse",
        # Every component must sign and check log requests with the same key: never let each generate one.
        "AIRFLOW__API__SECRET_KEY": hashlib.sha256(f"api:{jwt_secret}".encode()).hexdigest(),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(af.schedule),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.state_dir / "logs" / "airflow"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(af.log_server_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(af.trigger_log_server_port),
        # The Spark jobs' connection: spark-submit from this venv, to the configured master.
        "AIRFLOW_CONN_LAKEHOUSE_SPARK": json.dumps(
            {"conn_type": "spark", "host": settings.spark.master_url, "extra": {"deploy-mode": "client"}}
        ),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def prepare(settings: Settings) -> None:
    """Before the first start: the admin password file, the database, its schema, the pools."""
    import subprocess

    from lakehouse.errors import ServiceError
    from lakehouse.services import postgres

    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    secret_file = passwords_file(settings)
    secret_file.write_text(json.dumps({settings.airflow.admin_user: settings.secret("airflow", "admin_password")}))
    secret_file.chmod(0o600)
    postgres.ensure_database(settings, settings.airflow.database)
    env = {**os.environ, **environment(settings)}
    airflow = str(AIRFLOW)
    steps = [[airflow, "db", "migrate"]] + [
        [airflow, "pools", "set", name, "1", description] for name, description in POOLS.items()
    ]
    for step in steps:
        result = subprocess.run(step, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"`{' '.join(step[1:3])}` failed: {(result.stderr or result.stdout)[-2000:]}")


# Which entry of /api/v2/monitor/health reports each component.
HEALTH_ENTRY = {"api-server": "metadatabase", "scheduler": "scheduler", "dag-processor": "dag_processor",
                "triggerer": "triggerer"}  # fmt: skip


def check(settings: Settings, component: str) -> None:
    """Raises ServiceError unless Airflow reports the component healthy (the api-server: when it
    answers and reaches its database; the others: when their heartbeat is recent)."""
    import requests

    from lakehouse.errors import ServiceError

    url = f"{settings.airflow.url}/api/v2/monitor/health"
    try:
        response = requests.get(url, timeout=5)
        report = response.json() if response.status_code == 200 else {}
    except (requests.RequestException, ValueError) as exc:
        raise ServiceError(f"the Airflow api-server does not answer at {url}: {exc}") from exc
    state = (report.get(HEALTH_ENTRY[component]) or {}).get("status")
    if state != "healthy":
        raise ServiceError(f"Airflow {component} is {state or 'not reporting yet'} (per {url})")


def main(component: str) -> None:
    """Run one component with the computed environment; `init` only prepares (database, schema,
    pools, login): what Docker mode's one-shot airflow-init service runs before the components."""
    from lakehouse.settings import load_settings

    if component not in (*COMPONENTS, "init"):
        raise SystemExit(f"unknown Airflow component {component!r}; one of {', '.join(COMPONENTS)}, init")
    settings = load_settings()
    if component == "init":
        prepare(settings)
        print(f"Airflow database {settings.airflow.database} migrated, pools set, admin login written")
        return
    os.environ.update(environment(settings))
    airflow = str(AIRFLOW)
    os.execv(airflow, [airflow, component])


if __name__ == "__main__":
    main(sys.argv[1])
