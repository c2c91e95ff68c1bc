"""One settings source for every engine: config/lakehouse.yaml, overridden by .env and the environment.

Precedence (highest first): environment variables, the .env file, the YAML file, the
defaults below. Nested keys use a double underscore: LAKEHOUSE_S3__SECRET_KEY.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from lakehouse.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "LAKEHOUSE_"


def config_file() -> Path:
    return Path(os.environ.get("LAKEHOUSE_CONFIG", PROJECT_ROOT / "config/lakehouse.yaml"))


def env_file() -> Path:
    return Path(os.environ.get("LAKEHOUSE_ENV_FILE", PROJECT_ROOT / ".env"))


class S3Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(9000, ge=1, le=65535)
    region: str = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    warehouse_bucket: str = "lakehouse"
    warehouse_prefix: str = "warehouse"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def warehouse(self) -> str:
        return f"s3://{self.warehouse_bucket}/{self.warehouse_prefix}"


class KafkaSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)  # the embedded broker's KRaft controller
    heap: str = "512m"  # the embedded broker's JVM heap (-Xmx and -Xms)
    # Topic configuration `lakehouse topics create` applies: a record up to max_message_bytes
    # reaches the stream (which dead-letters one above the domain's own limit as `oversized`);
    # a larger one is refused by the broker at produce time.
    max_message_bytes: int = Field(1_048_576, ge=1024)
    retention_hours: int = Field(168, ge=1)  # how far back `bronze_replay` can read

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"


class PostgresSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    user: str = "lakehouse"
    password: SecretStr | None = None
    catalog_database: str = "iceberg_catalog"


class CatalogSettings(BaseModel):
    name: str = "lakehouse"
    definitions_dir: Path = Path("catalog")


class SparkSettings(BaseModel):
    # Where every Spark job runs: local threads by default, or any cluster URL you run
    # (spark://..., yarn, k8s://...). With `standalone`, the embedded stack starts a Spark
    # standalone master and worker and jobs go there instead.
    master: str = "local[*]"
    standalone: bool = False
    host: str = "127.0.0.1"  # the standalone master's and worker's address
    master_port: int = Field(7077, ge=1, le=65535)
    master_ui_port: int = Field(8082, ge=1, le=65535)
    worker_ui_port: int = Field(8083, ge=1, le=65535)
    worker_cores: int = Field(2, ge=1)
    worker_memory: str = "4g"
    executor_memory: str = "2g"
    driver_memory: str = "2g"
    shuffle_partitions: int = Field(4, ge=1)
    ui_enabled: bool = False
    extra_conf: dict[str, str] = Field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}" if self.standalone else self.master


class QualitySettings(BaseModel):
    # The quality gate validates a batch of at most this many rows with Great Expectations'
    # pandas data source (collected through Arrow: fast, but held in the driver's memory),
    # a larger one with its Spark data source.
    pandas_max_rows: int = Field(500_000, ge=0)


class FlinkSettings(BaseModel):
    """The Flink session cluster (one JobManager, one TaskManager) the stream jobs run on."""

    host: str = "127.0.0.1"  # where the JobManager's REST API and RPC are reached
    rest_port: int = Field(8081, ge=1, le=65535)  # REST API and web UI
    rpc_port: int = Field(6123, ge=1, le=65535)  # the JobManager's RPC endpoint
    # Only when the processes must listen on another address than the one they are reached at
    # (Docker mode: each container binds 0.0.0.0 and is reached by its service name). Empty: `host`.
    bind_host: str | None = None
    taskmanager_host: str | None = None  # the address the TaskManager registers with
    # A Flink installation to run instead of PyFlink's own distribution (Docker mode: the official
    # image's /opt/flink, with the project's jars in its lib/ and plugins/). Empty: PyFlink's.
    distribution: Path | None = None
    taskmanager_slots: int = Field(4, ge=1)
    jobmanager_memory: str = "1024m"  # total process memory
    taskmanager_memory: str = "2048m"
    checkpoint_interval_s: float = Field(2, gt=0)
    # Parallelism of a stream job (capped at its topic's partitions) and how long its dedup
    # state remembers a key.
    job_parallelism: int = Field(1, ge=1)
    dedup_ttl_days: float = Field(7, gt=0)
    # Extra Flink configuration (flat keys, as in Flink's config.yaml), for both processes.
    extra_conf: dict[str, str] = Field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"


class AirflowSettings(BaseModel):
    host: str = "127.0.0.1"  # where the api-server is reached (UI, REST API, execution API)
    port: int = Field(8080, ge=1, le=65535)
    # Only when the api-server must listen on another address than `host` (Docker mode: 0.0.0.0)
    # and browsers reach it at another URL than `url` (Docker mode: the port published on the
    # host). Empty: `host` and `url`.
    bind_host: str | None = None
    public_url: str | None = None
    database: str = "airflow"
    admin_user: str = "admin"
    admin_password: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    parallelism: int = Field(4, ge=1)
    max_range_days: int = Field(31, ge=1)
    # Airflow's own log servers (task logs shown in the UI), one port each.
    log_server_port: int = Field(8793, ge=1, le=65535)
    trigger_log_server_port: int = Field(8794, ge=1, le=65535)
    # False: the scheduler creates no scheduled runs; manual runs and backfills still run.
    schedule: bool = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def browser_url(self) -> str:
        return self.public_url or self.url


class JupyterSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8888, ge=1, le=65535)
    token: SecretStr | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class DemoSettings(BaseModel):
    """What `make up` sends on a fresh stack, for the default domain."""

    history_events: int = Field(20_000, ge=0)
    history_days: float = Field(3, gt=0)
    late_events: int = Field(500, ge=0)  # a second wave, dated in earlier days: gold corrects them
    live_rate: float = Field(2, ge=0)  # events/s sent for as long as the stack runs (0: none)
    # Date the demo's events as if they were sent at this moment (UTC when naive) instead of when
    # the demo first runs: a reproducible load (the tests pin it). Ingestion stays real time.
    now: datetime | None = None


class EmbeddedSettings(BaseModel):
    state_dir: Path = Path(".state")
    seaweedfs_internal_port_base: int = Field(19330, ge=1, le=65525)
    health_timeout_s: float = Field(60, gt=0)


# Where each credential is used, for the error message when it is missing.
REQUIRED_SECRETS = {
    ("s3", "access_key"): "the S3 server and every S3 client",
    ("s3", "secret_key"): "the S3 server and every S3 client",
    ("postgres", "password"): "the catalog database",
    ("airflow", "admin_password"): "the Airflow UI and REST API login",
    ("airflow", "jwt_secret"): "tokens between the Airflow processes",
    ("jupyter", "token"): "the JupyterLab login",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    s3: S3Settings = Field(default_factory=S3Settings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    jupyter: JupyterSettings = Field(default_factory=JupyterSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file())
        return init_settings, env_settings, dotenv_settings, yaml_source

    @property
    def project_root(self) -> Path:
        return PROJECT_ROOT

    @cached_property
    def state_dir(self) -> Path:
        return (PROJECT_ROOT / self.embedded.state_dir).resolve()

    @cached_property
    def definitions_dir(self) -> Path:
        return (PROJECT_ROOT / self.catalog.definitions_dir).resolve()

    def secret(self, section: str, key: str) -> str:
        """A credential's value; a missing one is a ConfigError naming the variable to set."""
        value = getattr(getattr(self, section), key)
        if value is None or not value.get_secret_value():
            variable = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            used_by = REQUIRED_SECRETS.get((section, key), "this component")
            raise ConfigError(
                f"missing credential {section}.{key} (used by {used_by}): set {variable} in the "
                f"environment or in {env_file()} (`make setup` writes a local .env with random values)"
            )
        return value.get_secret_value()

    def require_secrets(self) -> None:
        for section, key in REQUIRED_SECRETS:
            self.secret(section, key)


def load_settings() -> Settings:
    """Read the settings; any invalid value raises ConfigError naming the key and the fix."""
    path = config_file()
    if not path.is_file():
        raise ConfigError(f"settings file {path} not found (set LAKEHOUSE_CONFIG or restore config/lakehouse.yaml)")
    try:
        return Settings(_env_file=env_file())
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            variable = ENV_PREFIX + "__".join(str(part).upper() for part in error["loc"])
            problems.append(f"{key}: {error['msg']} (from {path}, or {variable})")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
